"""A webhook's ``http_config`` (credentials, TLS) and ``max_alerts``, as Alertmanager
applies them, against a local HTTPS receiver signed by a test CA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from notifier.channels.http_client import http_options
from notifier.channels.safe_http import safe_session
from notifier.channels.webhook import WebhookChannel
from notifier.core.targets import TargetPolicy
from notifier.receivers.config import ReceiversError
from notifier.receivers.loading import load_receivers, parse_receivers
from notifier.samples import sample_request
from opsmesh.clock import SystemClock

LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])


@dataclass
class Sink:
    url: str = ""
    seen: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
async def sink(certs: Any) -> AsyncIterator[Sink]:
    found = Sink()

    async def hook(request: web.Request) -> web.Response:
        found.seen.append((request.headers.get("Authorization"), await request.json()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_context())
    await site.start()
    found.url = f"https://localhost:{runner.addresses[0][1]}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


FILE = """
route: {{receiver: hooks}}
receivers:
  - name: hooks
    webhook_configs:
      - url: {url}
        max_alerts: 2
        http_config:
          bearer_token_file: token
          tls_config: {{ca_file: {ca}}}
      - url: {url}
        http_config:
          basic_auth: {{username: am, password_file: password}}
          tls_config: {{ca_file: {ca}}}
      - url: {url}
"""


async def test_credentials_tls_and_max_alerts_apply_per_webhook(
    sink: Sink, certs: Any, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("s3cr3t-bearer\n")
    (tmp_path / "password").write_text("s3cr3t-pw\n")
    path = tmp_path / "alertmanager.yml"
    path.write_text(FILE.format(url=sink.url, ca=certs.ca_file))
    hooks = load_receivers(str(path), None).by_name["hooks"]
    one = sample_request("hooks")
    alerts = [
        msgspec.structs.replace(one.alerts[0], fingerprint=f"f{i}", labels={"i": str(i)})
        for i in range(5)
    ]
    request = msgspec.structs.replace(one, alerts=alerts)
    results = []
    # The session trusts only the system's CAs: the test CA comes from tls_config.
    async with safe_session(LOOPBACK, timeout_s=5.0) as session:
        for index, config in enumerate(hooks.webhook_configs):
            channel = WebhookChannel(
                name=f"webhook-{index}",
                url=config.url,
                secrets=[],
                session=session,
                policy=LOOPBACK,
                clock=SystemClock(),
                http=http_options(config.http_config),
                max_alerts=config.max_alerts,
            )
            results.append(await channel.send(request))
    assert [r.ok for r in results[:2]] == [True, True]
    # Without the file's CA the same target is not trusted.
    assert results[2].ok is False
    assert len(sink.seen) == 2
    (bearer, truncated), (basic, full) = sink.seen
    assert bearer == "Bearer s3cr3t-bearer"
    assert basic == "Basic YW06czNjcjN0LXB3"  # am:s3cr3t-pw
    assert [a["labels"]["i"] for a in truncated["alerts"]] == ["0", "1"]
    assert truncated["truncatedAlerts"] == 3
    assert len(full["alerts"]) == 5
    assert full["truncatedAlerts"] == 0
    assert "s3cr3t" not in repr(hooks)


@pytest.mark.parametrize(
    ("integration", "field_name"),
    [
        (
            {
                "webhook_configs": [
                    {
                        "url": "https://h.example/",
                        "http_config": {"proxy_url": "http://p.example:3128"},
                    }
                ]
            },
            "proxy_url",
        ),
        (
            {
                "pagerduty_configs": [
                    {
                        "routing_key": "k",
                        "http_config": {
                            "oauth2": {"client_id": "i", "token_url": "https://t.example/"}
                        },
                    }
                ]
            },
            "oauth2",
        ),
        (
            {
                "slack_configs": [
                    {
                        "token": "xoxb-t",
                        "channel": "#c",
                        "http_config": {"bearer_token": "t"},
                    }
                ]
            },
            "bearer_token",
        ),
        (
            {
                "slack_configs": [
                    {
                        "api_url": "https://hooks.slack.com/x",
                        "http_config": {"tls_config": {"server_name": "s.example"}},
                    }
                ]
            },
            "tls_config.server_name",
        ),
    ],
)
def test_http_settings_the_notifier_lacks_are_refused_by_name(
    integration: dict[str, Any], field_name: str
) -> None:
    with pytest.raises(ReceiversError, match=f"http_config.{field_name} is not implemented"):
        parse_receivers({"receivers": [{"name": "r", **integration}]})
