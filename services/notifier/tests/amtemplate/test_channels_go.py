"""The channels with Alertmanager (Go) templates: an Alertmanager configuration's
receivers send Alertmanager's Slack message, email and PagerDuty event, to local servers
speaking each protocol; a receivers-only file keeps Jinja2."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer
from notifier.amtemplate.build import RendererUnavailable
from notifier.amtemplate.configured import alertmanager_templates
from notifier.channels.factory import destinations, tls_context
from notifier.channels.safe_http import safe_session
from notifier.channels.slack import MemoryMessageRefs
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy
from notifier.receivers.config import ReceiversError, TemplateLanguage
from notifier.receivers.loading import load_receivers
from notifier.samples import sample_request
from notifier.settings import NotifierSettings
from opsmesh.clock import SystemClock
from opsmesh.events.alerts import AlertStatus
from opsmesh_dev.infra.process import free_port

LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])
NOW = 1_710_081_600.0  # 2024-03-10T14:40:00Z


@dataclass
class Fake:
    base: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mails: list[EmailMessage] = field(default_factory=list)
    smtp_port: int = 0

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.calls if p == path]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append(parsed)
        return "250 OK"


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    state = Fake()
    counter = iter(range(1000, 100_000))

    async def any_post(request: web.Request) -> web.Response:
        body = await request.json()
        state.calls.append((request.path, body))
        if request.path == "/hook":
            return web.Response(text="ok")
        if request.path.startswith("/api/chat."):
            return web.json_response(
                {
                    "ok": True,
                    "channel": body["channel"],
                    "ts": body.get("ts") or f"{next(counter)}.1",
                }
            )
        return web.json_response({"status": "success"}, status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", any_post)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.base = f"http://{host}:{port}"
    smtp = Controller(state, hostname="127.0.0.1", port=free_port())
    smtp.start()
    state.smtp_port = smtp.port
    yield state
    smtp.stop()
    await runner.cleanup()


def _config_file(tmp_path: Path, fake: Fake) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "team.tmpl").write_text(
        '{{ define "team.title" }}{{ .CommonLabels.alertname }} is {{ .Status }}{{ end }}'
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(
        f"""
route: {{receiver: team}}
templates: ["templates/*.tmpl"]
receivers:
  - name: team
    slack_configs:
      - api_url: {fake.base}/hook
        title: '{{{{ template "team.title" . }}}}'
        text: '{{{{ range .Alerts }}}}{{{{ .Annotations.summary }}}}{{{{ end }}}}'
      - token: xoxb-test-token
        channel: "#ops"
        api_base_url: {fake.base}/api/
        send_resolved: true
    email_configs:
      - to: [oncall@example.com]
        from: alertmanager@example.com
        smarthost: 127.0.0.1:{fake.smtp_port}
        require_tls: false
        headers: {{X-Team: '{{{{ .GroupLabels.service }}}}'}}
    pagerduty_configs:
      - routing_key: routing-key-secret
        url: {fake.base}/pd
        details: {{service: '{{{{ .CommonLabels.service }}}}'}}
  - name: broken
    slack_configs:
      - api_url: {fake.base}/hook
        title: '{{{{ template "nope" . }}}}'
"""
    )
    return path


@pytest.fixture
async def templates(renderer_binary: Path, tmp_path: Path, fake: Fake) -> AsyncIterator[Any]:
    path = _config_file(tmp_path, fake)
    receivers = load_receivers(str(path), None)
    renderer = GoRenderer(renderer_binary, workers=1)
    loaded = AlertmanagerTemplates(renderer, receivers.templates)
    await loaded.check()
    yield receivers, loaded
    await renderer.close()


async def _send_all(
    receivers: Any,
    templates: Any,
    name: str,
    status: AlertStatus,
    refs: MemoryMessageRefs | None = None,
) -> dict[str, Any]:
    results = {}
    async with safe_session(LOOPBACK, timeout_s=5) as session:
        for destination in destinations(
            receivers.get(name),
            session=session,
            policy=LOOPBACK,
            clock=SystemClock(),
            refs=refs or MemoryMessageRefs(),
            timeout_s=5,
            tls=tls_context(None),
            concurrency=1,
            slack_rate_per_s=1,
            templates=templates,
        ):
            request = sample_request(name, status=status, now=NOW, key=f"k-{status}")
            results[destination.integration] = await destination.channel.send(request)
    return results


async def test_an_alertmanager_configuration_renders_as_alertmanager(
    templates: Any, fake: Fake
) -> None:
    receivers, loaded = templates
    assert receivers.language is TemplateLanguage.GO
    results = await _send_all(receivers, loaded, "team", AlertStatus.FIRING)
    assert all(r.ok for r in results.values()), results

    (hook,) = fake.bodies("/hook")
    assert hook == {
        "username": "Alertmanager",
        "attachments": [
            {
                "title": "DiskAlmostFull is firing",
                "title_link": "https://opsmesh.example.com/groups/checkout/#/alerts?receiver=team",
                "text": "Disk <sda1> is 97% full & climbing",
                "fallback": "[FIRING:1] DiskAlmostFull checkout (db-1:9100 page) | "
                "https://opsmesh.example.com/groups/checkout/#/alerts?receiver=team",
                "callback_id": "",
                "footer": "",
                "color": "danger",
                "mrkdwn_in": ["fallback", "pretext", "text"],
            }
        ],
    }
    (posted,) = fake.bodies("/api/chat.postMessage")
    assert posted["channel"] == "#ops"
    assert (
        posted["attachments"][0]["title"] == "[FIRING:1] DiskAlmostFull checkout (db-1:9100 page)"
    )

    (mail,) = fake.mails
    assert mail["Subject"] == "[FIRING:1] DiskAlmostFull checkout (db-1:9100 page)"
    assert mail["To"] == "oncall@example.com"
    assert mail["From"] == "alertmanager@example.com"
    assert mail["X-Team"] == "checkout"
    assert mail.get_body(("plain",)) is None  # Alertmanager's default text is empty
    html = mail.get_body(("html",))
    assert html is not None
    assert "Disk &lt;sda1&gt; is 97% full &amp; climbing" in html.get_content()

    (event,) = fake.bodies("/pd")
    assert event["event_action"] == "trigger"
    assert event["routing_key"] == "routing-key-secret"
    assert event["client"] == "Alertmanager"
    assert event["payload"]["summary"] == "[FIRING:1] DiskAlmostFull checkout (db-1:9100 page)"
    assert event["payload"]["source"] == "Alertmanager"
    assert event["payload"]["severity"] == "error"
    details = event["payload"]["custom_details"]
    assert details["service"] == "checkout"
    assert details["num_firing"] == 1
    assert details["firing"][0]["labels"]["instance"] == "db-1:9100"


async def test_a_resolution_updates_the_slack_message_with_alertmanagers_attachment(
    templates: Any, fake: Fake
) -> None:
    receivers, loaded = templates
    refs = MemoryMessageRefs()
    await _send_all(receivers, loaded, "team", AlertStatus.FIRING, refs)
    await _send_all(receivers, loaded, "team", AlertStatus.RESOLVED, refs)
    (update,) = fake.bodies("/api/chat.update")
    assert update["channel"] == "#ops"
    assert update["attachments"][0]["color"] == "good"
    assert update["attachments"][0]["title"].startswith("[RESOLVED] DiskAlmostFull")


async def test_a_failing_template_is_a_template_failure(templates: Any, fake: Fake) -> None:
    receivers, loaded = templates
    results = await _send_all(receivers, loaded, "broken", AlertStatus.FIRING)
    (result,) = results.values()
    assert not result.ok
    assert result.failure is FailureKind.TEMPLATE
    assert 'template "nope" not defined' in (result.error or "")
    assert fake.calls == []


def test_the_language_follows_the_file_unless_set(tmp_path: Path) -> None:
    receivers_only = tmp_path / "receivers.yml"
    receivers_only.write_text("receivers: [{name: a}]\n")
    assert load_receivers(str(receivers_only), None).language is TemplateLanguage.JINJA2
    assert (
        load_receivers(str(receivers_only), None, TemplateLanguage.GO).language
        is TemplateLanguage.GO
    )
    full = tmp_path / "alertmanager.yml"
    full.write_text("route: {receiver: a}\nreceivers: [{name: a}]\n")
    assert load_receivers(str(full), None).language is TemplateLanguage.GO
    assert load_receivers(None, "http://x.example.com/").language is TemplateLanguage.JINJA2
    with_templates = tmp_path / "t.yml"
    with_templates.write_text(
        "templates: ['/etc/am/*.tmpl', 'rel/*.tmpl']\nreceivers: [{name: a}]\n"
    )
    loaded = load_receivers(str(with_templates), None)
    assert loaded.language is TemplateLanguage.GO
    assert loaded.templates == ("/etc/am/*.tmpl", str(tmp_path.resolve() / "rel/*.tmpl"))
    with pytest.raises(ReceiversError, match="Alertmanager \\(Go\\) template files"):
        load_receivers(str(with_templates), None, TemplateLanguage.JINJA2)
    bad = tmp_path / "bad.yml"
    bad.write_text("templates: 3\nreceivers: [{name: a}]\n")
    with pytest.raises(ReceiversError, match=r"templates: Expected `array"):
        load_receivers(str(bad), None)


def test_a_missing_renderer_is_an_error_at_start(tmp_path: Path, monkeypatch: Any) -> None:
    full = tmp_path / "alertmanager.yml"
    full.write_text("route: {receiver: a}\nreceivers: [{name: a}]\n")
    monkeypatch.setenv("NOTIFIER_AMTEMPLATE_BIN", str(tmp_path / "missing"))
    settings = NotifierSettings()
    with pytest.raises(RendererUnavailable, match="not an executable"):
        alertmanager_templates(settings, load_receivers(str(full), None))
    jinja = load_receivers(str(full), None, TemplateLanguage.JINJA2)
    assert alertmanager_templates(settings, jinja) is None


def test_preview_shows_alertmanagers_messages(
    tmp_path: Path, renderer_binary: Path, monkeypatch: Any
) -> None:
    from click.testing import CliRunner  # noqa: PLC0415

    from notifier.cli import notify  # noqa: PLC0415

    path = tmp_path / "alertmanager.yml"
    path.write_text(
        """
route: {receiver: ops}
receivers:
  - name: ops
    slack_configs: [{api_url: "https://hooks.slack.example.com/x", text: "{{ len .Alerts }} alerts"}]
    pagerduty_configs: [{routing_key: "secret-routing-key"}]
    email_configs: [{to: [a@example.com], from: am@example.com, smarthost: "mail.example.com:25"}]
    opsgenie_configs: [{api_key: "secret-genie-key", priority: P3}]
    msteams_configs: [{webhook_url: "https://teams.example.com/webhookb2/secret-path"}]
"""
    )
    monkeypatch.setenv("NOTIFIER_AMTEMPLATE_BIN", str(renderer_binary))
    result = CliRunner().invoke(notify, ["preview", "ops", "--receivers-file", str(path)])
    assert result.exit_code == 0, result.output
    assert "(slack, Alertmanager templates)" in result.output
    assert '"text": "1 alerts"' in result.output
    assert "Subject: [FIRING:1] DiskAlmostFull checkout (db-1:9100 page)" in result.output
    assert '"client": "Alertmanager"' in result.output
    assert "secret-routing-key" not in result.output
    assert "POST https://api.opsgenie.com/v2/alerts" in result.output
    assert '"priority": "P3"' in result.output
    assert '"type": "MessageCard"' in result.output
    assert "secret-genie-key" not in result.output
    assert "secret-path" not in result.output
    path.write_text(path.read_text().replace("{{ len .Alerts }}", "{{ len .Alerts"))
    broken = CliRunner().invoke(notify, ["preview", "ops", "--receivers-file", str(path)])
    assert broken.exit_code == 1
    assert "Error: template failed (text): template: :1:" in broken.output
    assert "secret-genie-key" not in broken.output


async def test_opsgenie_and_teams_are_built_from_an_alertmanager_configuration(
    renderer_binary: Path, tmp_path: Path, fake: Fake
) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(
        f"""
global: {{opsgenie_api_key: genie-key, opsgenie_api_url: "{fake.base}/og"}}
route: {{receiver: pager}}
receivers:
  - name: pager
    opsgenie_configs: [{{priority: P2}}]
    msteams_configs: [{{webhook_url: "{fake.base}/teams/s3cr3t"}}]
"""
    )
    receivers = load_receivers(str(path), None)
    renderer = GoRenderer(renderer_binary, workers=1)
    try:
        loaded = AlertmanagerTemplates(renderer, receivers.templates)
        async with safe_session(LOOPBACK, timeout_s=5) as session:
            built = destinations(
                receivers.get("pager"),
                session=session,
                policy=LOOPBACK,
                clock=SystemClock(),
                refs=MemoryMessageRefs(),
                timeout_s=5,
                tls=tls_context(None),
                concurrency=4,
                slack_rate_per_s=1,
                templates=loaded,
            )
            assert [(d.integration, d.send_resolved, d.concurrency) for d in built] == [
                ("opsgenie-0", True, 2),
                ("msteams-0", True, 1),
            ]
            for status in (AlertStatus.FIRING, AlertStatus.RESOLVED):
                request = sample_request("pager", status=status, now=NOW)
                for destination in built:
                    assert (await destination.channel.send(request)).ok
    finally:
        await renderer.close()
    create, _close = [body for p, body in fake.calls if p.startswith("/og/")]
    assert create["priority"] == "P2"
    assert [p for p, _ in fake.calls if p.startswith("/og/")] == [
        "/og/v2/alerts",
        f"/og/v2/alerts/{create['alias']}/close",
    ]
    firing, resolved = fake.bodies("/teams/s3cr3t")
    assert (firing["themeColor"], resolved["themeColor"]) == ("8C1A1A", "2DC72D")
