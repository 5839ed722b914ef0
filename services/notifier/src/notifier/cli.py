"""``opsmesh notify``: preview a receiver's notifications, or send it a test one.

Reads the same settings as the service (``NOTIFIER_RECEIVERS_FILE``,
``NOTIFIER_ALLOWED_NETWORKS``, ``NOTIFIER_CA_FILE``...), so what you see is what the
service would send.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import click

from notifier.receivers.config import (
    EmailConfig,
    IntegrationConfig,
    MSTeamsConfig,
    OpsGenieConfig,
    PagerDutyConfig,
    ReceiverConfig,
    Receivers,
    SlackConfig,
    WebhookConfig,
)
from notifier.receivers.loading import load_receivers
from notifier.samples import sample_request
from notifier.settings import NotifierSettings
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested
from opsmesh.settings import load_settings

if TYPE_CHECKING:
    from notifier.amtemplate import AlertmanagerTemplates


def _receivers(settings: NotifierSettings, receivers_file: str | None) -> Receivers:
    return load_receivers(
        receivers_file or settings.receivers_file,
        settings.default_webhook_url,
        settings.template_language_choice(),
    )


def _receiver(receivers: Receivers, name: str) -> ReceiverConfig:
    found = receivers.get(name)
    if found is None:
        known = ", ".join(sorted(receivers.by_name)) or "none"
        raise click.ClickException(f"no receiver {name!r} (known: {known})")
    return found


def _templates(settings: NotifierSettings, receivers: Receivers) -> AlertmanagerTemplates | None:
    from notifier.amtemplate.build import RendererUnavailable  # noqa: PLC0415
    from notifier.amtemplate.configured import alertmanager_templates  # noqa: PLC0415

    try:
        return alertmanager_templates(settings, receivers)
    except RendererUnavailable as exc:
        raise click.ClickException(str(exc)) from None


async def _preview_go(
    templates: AlertmanagerTemplates, config: ReceiverConfig, request: NotificationRequested
) -> None:
    """What Alertmanager's templates render for each integration of ``config``."""
    from notifier.amtemplate import TemplateError  # noqa: PLC0415
    from notifier.core.rendering import RenderError  # noqa: PLC0415

    try:
        await templates.check()
        for integration, kind, item in config.integrations():
            click.secho(f"== {integration} ({kind.value}, Alertmanager templates)", bold=True)
            click.echo(await _go_preview(templates, request, item))
    except RenderError as exc:
        raise click.ClickException(str(exc)) from None
    except TemplateError as exc:
        raise click.ClickException(f"templates: {exc}") from None
    finally:
        await templates.renderer.close()


async def _go_preview(
    templates: AlertmanagerTemplates, request: NotificationRequested, item: IntegrationConfig
) -> str:
    """One integration's message as text: what it would send."""
    from notifier.amtemplate import messages  # noqa: PLC0415
    from notifier.channels.email import build_am_message  # noqa: PLC0415
    from notifier.channels.opsgenie import api_calls  # noqa: PLC0415
    from notifier.core import pagerduty_event  # noqa: PLC0415
    from notifier.core.webhook_payload import webhook_payload  # noqa: PLC0415

    if isinstance(item, EmailConfig):
        rendered = await templates.render(request, messages.email_fields(item))
        message = build_am_message(item, request, rendered)
        lines = [f"{name}: {value}" for name, value in message.items()]
        for part in ("plain", "html"):
            body = message.get_body((part,))
            lines.append(f"--- {part}\n{body.get_content() if body else ''}")
        return "\n".join(lines)
    if isinstance(item, SlackConfig):
        rendered = await templates.render(request, messages.slack_fields(item))
        return json.dumps(messages.slack_message(item, rendered), indent=2)
    if isinstance(item, PagerDutyConfig):
        rendered = await templates.render(request, messages.pagerduty_fields(item))
        event = pagerduty_event.am_event(request, routing_key="<routing key>", rendered=rendered)
        return json.dumps(event, indent=2)
    if isinstance(item, OpsGenieConfig):
        rendered = await templates.render(request, messages.opsgenie_fields(item))
        return "\n".join(
            f"{call.method} {item.api_url}{call.path}\n{json.dumps(call.body, indent=2)}"
            for call in api_calls(item, request, rendered)
        )
    if isinstance(item, MSTeamsConfig):
        rendered = await templates.render(request, messages.msteams_fields(item))
        return json.dumps(messages.msteams_card(request, rendered), indent=2)
    return json.dumps(webhook_payload(request, item.max_alerts), indent=2)


@click.group()
def notify() -> None:
    """Preview and test notification receivers."""


_STATUS = click.option(
    "--resolved", is_flag=True, help="Use a resolved group instead of a firing one."
)
_FILE = click.option(
    "--receivers-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Receivers file (default: $NOTIFIER_RECEIVERS_FILE).",
)


@notify.command()
@click.argument("receiver")
@_STATUS
@_FILE
def preview(receiver: str, resolved: bool, receivers_file: str | None) -> None:
    """Render a sample alert group for each of RECEIVER's integrations (sends nothing)."""
    from notifier.channels import slack  # noqa: PLC0415 - the CLI starts fast
    from notifier.channels.email import build_message  # noqa: PLC0415
    from notifier.core import pagerduty_event  # noqa: PLC0415
    from notifier.core.rendering import render_named, template_data  # noqa: PLC0415
    from notifier.core.webhook_payload import webhook_payload  # noqa: PLC0415

    settings = load_settings(NotifierSettings)
    receivers = _receivers(settings, receivers_file)
    config = _receiver(receivers, receiver)
    status = AlertStatus.RESOLVED if resolved else AlertStatus.FIRING
    request = sample_request(receiver, status=status)
    templates = _templates(settings, receivers)
    if templates is not None:
        asyncio.run(_preview_go(templates, config, request))
        return
    data = template_data(request)
    for integration, kind, item in config.integrations():
        click.secho(f"== {integration} ({kind.value})", bold=True)
        if isinstance(item, EmailConfig):
            message = build_message(item, request)
            click.echo(f"Subject: {message['Subject']}")
            click.echo(f"To: {message['To']}" + (f"\nCc: {message['Cc']}" if message["Cc"] else ""))
            for part in ("plain", "html"):
                body = message.get_body((part,))
                click.echo(f"--- {part}\n{body.get_content() if body else ''}")
        elif isinstance(item, SlackConfig):
            title, text = slack.render_slack(item, request)
            click.echo(
                json.dumps({"text": title, "blocks": slack.blocks(title, text, request)}, indent=2)
            )
        elif isinstance(item, PagerDutyConfig):
            summary = render_named(item.summary, "pagerduty_summary.j2", data)
            event = pagerduty_event.event(
                request,
                routing_key="<routing key>",
                summary=" ".join(summary.split()),
                source=item.source or "opsmesh",
                default_severity=item.severity,
            )
            click.echo(json.dumps(event, indent=2))
        elif isinstance(item, WebhookConfig):
            click.echo(json.dumps(webhook_payload(request, item.max_alerts), indent=2))
        else:  # Opsgenie and Teams: refused at load without Alertmanager templates
            raise click.ClickException(f"{integration}: needs Alertmanager (Go) templates")


@notify.command()
@click.argument("receiver")
@_STATUS
@_FILE
def test(receiver: str, resolved: bool, receivers_file: str | None) -> None:
    """Send one sample alert group to each of RECEIVER's integrations, once, no retries."""
    settings = load_settings(NotifierSettings)
    receivers = _receivers(settings, receivers_file)
    config = _receiver(receivers, receiver)
    status = AlertStatus.RESOLVED if resolved else AlertStatus.FIRING
    failures = asyncio.run(_send_test(settings, config, status, _templates(settings, receivers)))
    if failures:
        raise click.ClickException(f"{failures} integration(s) failed")


async def _send_test(
    settings: NotifierSettings,
    config: ReceiverConfig,
    status: AlertStatus,
    templates: AlertmanagerTemplates | None,
) -> int:
    request = sample_request(config.name, status=status)
    if templates is None:
        return await _send_each(settings, config, request, None)
    from notifier.amtemplate import TemplateError  # noqa: PLC0415

    try:
        await templates.check()
        return await _send_each(settings, config, request, templates)
    except TemplateError as exc:
        raise click.ClickException(f"templates: {exc}") from None
    finally:
        await templates.renderer.close()


async def _send_each(
    settings: NotifierSettings,
    config: ReceiverConfig,
    request: NotificationRequested,
    templates: AlertmanagerTemplates | None,
) -> int:
    from notifier.channels.factory import destinations, tls_context  # noqa: PLC0415
    from notifier.channels.safe_http import safe_session  # noqa: PLC0415
    from notifier.channels.slack import MemoryMessageRefs  # noqa: PLC0415
    from notifier.core.targets import TargetPolicy  # noqa: PLC0415
    from opsmesh.clock import SystemClock  # noqa: PLC0415

    policy = TargetPolicy.from_strings(settings.allowed_networks)
    tls = tls_context(settings.ca_file)
    failures = 0
    async with safe_session(policy, timeout_s=settings.send_timeout_s, ssl_context=tls) as session:
        for destination in destinations(
            config,
            session=session,
            policy=policy,
            clock=SystemClock(),
            refs=MemoryMessageRefs(),
            timeout_s=settings.send_timeout_s,
            tls=tls,
            concurrency=1,
            slack_rate_per_s=settings.slack_rate_per_s,
            templates=templates,
        ):
            result = await destination.channel.send(request)
            if result.ok:
                click.echo(f"{destination.integration}: sent (status {result.status_code})")
            else:
                failures += 1
                click.echo(f"{destination.integration}: FAILED {result.failure}: {result.error}")
    return failures
