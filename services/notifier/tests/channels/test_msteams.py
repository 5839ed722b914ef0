"""MSTeamsChannel against a fake Teams incoming webhook served over TLS with a test CA.

The fake answers as Teams' connector webhook does: 200 with the body ``1`` for an accepted
card, 400 for a body that is not a card, 404 for an unknown webhook, 429 when throttled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer
from notifier.amtemplate.build import build
from notifier.channels.msteams import MSTeamsChannel
from notifier.channels.safe_http import safe_session
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy
from notifier.receivers.loading import parse_receivers
from notifier.samples import sample_request
from opsmesh.events.alerts import AlertStatus
from opsmesh_dev.testing.clock import FakeClock

LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])
ORIGIN_ONLY = TargetPolicy.from_strings(["127.0.0.1/32"])
SECRET_PATH = "webhookb2/7c0e5a2b-s3cr3t@1f2e/IncomingWebhook/9a8b7c6d/0e1f2a3b"


@dataclass
class FakeTeams:
    url: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def teams(certs: Any) -> AsyncIterator[FakeTeams]:
    fake = FakeTeams()

    async def webhook(request: web.Request) -> web.Response:
        if request.match_info["tail"] != SECRET_PATH:
            return web.Response(status=404, text=f"webhook {request.path} not found")
        if fake.answers:
            status, headers = fake.answers.pop(0)
            return web.Response(status=status, headers=headers, text=f"refused {request.path}")
        body = await request.json()
        if body.get("type") != "MessageCard" or not body.get("text"):
            return web.Response(status=400, text="Summary or Text is required.")
        fake.cards.append(body)
        return web.Response(text="1")

    app = web.Application()
    app.router.add_post("/{tail:.*}", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_context())
    await site.start()
    fake.url = f"https://localhost:{runner.addresses[0][1]}/{SECRET_PATH}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def session(certs: Any) -> AsyncIterator[aiohttp.ClientSession]:
    async with safe_session(LOOPBACK, timeout_s=5.0, ssl_context=certs.client_context()) as s:
        yield s


@pytest.fixture(scope="module")
def renderer_binary() -> Path:
    return build()


@pytest.fixture
async def templates(renderer_binary: Path) -> AsyncIterator[AlertmanagerTemplates]:
    renderer = GoRenderer(renderer_binary, workers=1)
    yield AlertmanagerTemplates(renderer)
    await renderer.close()


def make(
    config: dict[str, Any],
    session: aiohttp.ClientSession,
    templates: AlertmanagerTemplates,
    *,
    policy: TargetPolicy = LOOPBACK,
    base_dir: Path | None = None,
) -> MSTeamsChannel:
    raw = {"receivers": [{"name": "ops", "msteams_configs": [config]}]}
    parsed = parse_receivers(raw, base_dir=base_dir)["ops"].msteams_configs[0]
    return MSTeamsChannel(
        name="msteams-0",
        config=parsed,
        session=session,
        policy=policy,
        clock=FakeClock(1_700_000_000.0),
        templates=templates,
    )


async def test_firing_then_resolved_cards_with_alertmanagers_defaults(
    teams: FakeTeams, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    channel = make({"webhook_url": teams.url}, session, templates)
    assert (await channel.send(sample_request("ops"))).ok
    assert (await channel.send(sample_request("ops", status=AlertStatus.RESOLVED))).ok
    firing, resolved = teams.cards
    assert firing["@context"] == "http://schema.org/extensions"
    assert firing["type"] == "MessageCard"
    assert (
        firing["title"]
        == firing["summary"]
        == ("[FIRING:1] DiskAlmostFull checkout (db-1:9100 page)")
    )
    assert firing["themeColor"] == "8C1A1A"
    assert "# Alerts Firing:\n\nLabels:\n  - alertname = DiskAlmostFull\n" in firing["text"]
    assert "Source: https://opsmesh.example.com/alerts/5f3c2a9d0b1e4f67" in firing["text"]
    assert resolved["title"].startswith("[RESOLVED] DiskAlmostFull checkout")
    assert resolved["themeColor"] == "2DC72D"
    assert "# Alerts Resolved:" in resolved["text"]


async def test_configured_templates_and_a_url_file(
    teams: FakeTeams,
    session: aiohttp.ClientSession,
    templates: AlertmanagerTemplates,
    tmp_path: Path,
) -> None:
    (tmp_path / "teams-url").write_text(teams.url + "\n")
    config = {
        "webhook_url_file": "teams-url",
        "title": "{{ .CommonLabels.alertname }} ({{ .Status }})",
        "summary": "{{ len .Alerts }} alert(s) for {{ .Receiver }}",
        "text": "{{ range .Alerts }}**{{ .Labels.instance }}**: "
        "{{ .Annotations.summary }}{{ end }}",
    }
    channel = make(config, session, templates, base_dir=tmp_path)
    assert (await channel.send(sample_request("ops"))).ok
    (card,) = teams.cards
    assert card == {
        "@context": "http://schema.org/extensions",
        "type": "MessageCard",
        "title": "DiskAlmostFull (firing)",
        "summary": "1 alert(s) for ops",
        "text": "**db-1:9100**: Disk <sda1> is 97% full & climbing",
        "themeColor": "8C1A1A",
    }


@pytest.mark.parametrize(
    "answer",
    [
        (429, {"Retry-After": "2"}, FailureKind.RATE_LIMITED, 2.0),
        (502, {}, FailureKind.SERVER_ERROR, None),
        (410, {}, FailureKind.CLIENT_ERROR, None),
    ],
)
async def test_answers_are_classified_and_the_url_never_shows(
    teams: FakeTeams,
    session: aiohttp.ClientSession,
    templates: AlertmanagerTemplates,
    answer: tuple[int, dict[str, str], FailureKind, float | None],
) -> None:
    status, headers, kind, retry_after = answer
    teams.answers = [(status, headers)]
    channel = make({"webhook_url": teams.url}, session, templates)
    result = await channel.send(sample_request("ops"))
    assert (result.status_code, result.failure, result.retry_after_s) == (
        status,
        kind,
        retry_after,
    )
    # The fake echoes the path (the webhook's secret): the error must not.
    assert "s3cr3t" not in (result.error or "")
    assert f"answered {status}" in (result.error or "")


async def test_an_unknown_webhook_is_final(
    teams: FakeTeams, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    channel = make({"webhook_url": teams.url + "-gone"}, session, templates)
    result = await channel.send(sample_request("ops"))
    assert (result.status_code, result.failure) == (404, FailureKind.CLIENT_ERROR)
    assert not FailureKind.CLIENT_ERROR.retryable
    assert "s3cr3t" not in (result.error or "")


async def test_an_empty_card_is_refused_by_teams_as_a_client_error(
    teams: FakeTeams, session: aiohttp.ClientSession, templates: AlertmanagerTemplates
) -> None:
    config = {"webhook_url": teams.url, "text": "{{ .CommonLabels.nothing }}"}
    channel = make(config, session, templates)
    result = await channel.send(sample_request("ops"))
    assert (result.status_code, result.failure) == (400, FailureKind.CLIENT_ERROR)
    assert "Text is required" in (result.error or "")


async def test_a_target_outside_the_policy_is_refused_and_a_redirect_not_followed(
    templates: AlertmanagerTemplates,
) -> None:
    seen: list[str] = []

    async def trap(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="1")

    async def redirecting(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": trap_url})

    trap_app, origin_app = web.Application(), web.Application()
    trap_app.router.add_route("*", "/{tail:.*}", trap)
    origin_app.router.add_route("*", "/{tail:.*}", redirecting)
    runners = [web.AppRunner(trap_app), web.AppRunner(origin_app)]
    for runner in runners:
        await runner.setup()
    await web.TCPSite(runners[0], "127.0.0.2", 0).start()
    await web.TCPSite(runners[1], "127.0.0.1", 0).start()
    trap_url = f"http://127.0.0.2:{runners[0].addresses[0][1]}/{SECRET_PATH}"
    origin_url = f"http://127.0.0.1:{runners[1].addresses[0][1]}/{SECRET_PATH}"
    try:
        async with safe_session(ORIGIN_ONLY, timeout_s=5.0) as guarded:
            direct = await make(
                {"webhook_url": trap_url}, guarded, templates, policy=ORIGIN_ONLY
            ).send(sample_request("ops"))
            redirected = await make(
                {"webhook_url": origin_url}, guarded, templates, policy=ORIGIN_ONLY
            ).send(sample_request("ops"))
    finally:
        for runner in runners:
            await runner.cleanup()
    assert direct.failure is FailureKind.REFUSED_TARGET
    assert redirected.failure is FailureKind.REDIRECTED
    assert seen == []
    assert "s3cr3t" not in (direct.error or "") + (redirected.error or "")
