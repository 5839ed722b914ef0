"""Receivers onto destinations: one channel per integration, with its lane's limits."""

from __future__ import annotations

import ssl

import aiohttp

from notifier.amtemplate import AlertmanagerTemplates
from notifier.channels.base import Channel
from notifier.channels.email import EmailChannel
from notifier.channels.http_client import http_options
from notifier.channels.msteams import MSTeamsChannel
from notifier.channels.opsgenie import OpsGenieChannel
from notifier.channels.pagerduty import PagerDutyChannel
from notifier.channels.slack import MessageRefs, SlackChannel
from notifier.channels.webhook import WebhookChannel
from notifier.core.targets import TargetPolicy
from notifier.pipeline.lanes import Destination
from notifier.receivers.config import (
    EmailConfig,
    IntegrationKind,
    MSTeamsConfig,
    OpsGenieConfig,
    PagerDutyConfig,
    ReceiverConfig,
    SlackConfig,
    WebhookConfig,
)
from opsmesh.clock import Clock


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def destinations(
    receiver: ReceiverConfig,
    *,
    session: aiohttp.ClientSession,
    policy: TargetPolicy,
    clock: Clock,
    refs: MessageRefs,
    timeout_s: float,
    tls: ssl.SSLContext,
    concurrency: int,
    slack_rate_per_s: float,
    templates: AlertmanagerTemplates | None = None,
    generation: int = 0,
) -> list[Destination]:
    """``templates``: render as Alertmanager does (Go templates); None: Jinja2.
    ``generation``: the configuration's (``ReceiverTable``)."""
    out: list[Destination] = []
    for integration, kind, config in receiver.integrations():
        channel: Channel
        rate_key: str | None = None
        rate: float | None = None
        burst = 1.0
        lanes = concurrency
        if kind is IntegrationKind.WEBHOOK:
            assert isinstance(config, WebhookConfig)
            channel = WebhookChannel(
                name=integration,
                url=config.url,
                secrets=[s.get_secret_value() for s in config.secrets],
                session=session,
                policy=policy,
                clock=clock,
                http=http_options(config.http_config),
                max_alerts=config.max_alerts,
            )
        elif kind is IntegrationKind.EMAIL:
            assert isinstance(config, EmailConfig)
            channel = EmailChannel(
                name=integration,
                config=config,
                policy=policy,
                timeout_s=timeout_s,
                tls_context=tls,
                templates=templates,
            )
            lanes = min(concurrency, 4)  # SMTP servers dislike many parallel sessions
        elif kind is IntegrationKind.SLACK:
            assert isinstance(config, SlackConfig)
            slack = SlackChannel(
                name=integration,
                receiver=receiver.name,
                config=config,
                session=session,
                policy=policy,
                refs=refs,
                timeout_s=timeout_s,
                templates=templates,
            )
            channel, rate_key, rate = slack, slack.rate_key, slack_rate_per_s
            # One message per second per channel: more workers would only queue on it,
            # and one keeps a group's post and its update in order.
            lanes = 1
        elif kind is IntegrationKind.OPSGENIE:
            assert isinstance(config, OpsGenieConfig)
            # receivers/loading.py refuses these integrations unless templates are Alertmanager's.
            assert templates is not None
            channel = OpsGenieChannel(
                name=integration,
                config=config,
                session=session,
                policy=policy,
                clock=clock,
                templates=templates,
            )
            # No shared bucket: Opsgenie's limits depend on the plan; its 429s (with
            # Retry-After) pace the lane.
            lanes = min(concurrency, 2)  # keep a group's create before its close
        elif kind is IntegrationKind.MSTEAMS:
            assert isinstance(config, MSTeamsConfig)
            assert templates is not None
            channel = MSTeamsChannel(
                name=integration,
                config=config,
                session=session,
                policy=policy,
                clock=clock,
                templates=templates,
            )
            lanes = 1  # messages of a channel stay in order, as Slack's do
        else:
            assert isinstance(config, PagerDutyConfig)
            pagerduty = PagerDutyChannel(
                name=integration,
                config=config,
                session=session,
                policy=policy,
                templates=templates,
            )
            channel, rate_key = pagerduty, pagerduty.rate_key
            rate, burst = config.rate_per_min / 60.0, 10.0
            lanes = min(concurrency, 2)  # keep a group's trigger before its resolve
        out.append(
            Destination(
                receiver=receiver.name,
                integration=integration,
                channel=channel,
                send_resolved=config.send_resolved,
                concurrency=lanes,
                rate_key=rate_key,
                rate_per_s=rate,
                burst=burst,
                generation=generation,
            )
        )
    return out
