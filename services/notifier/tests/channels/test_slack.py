"""SlackChannel with slack-sdk's real clients pointed at a fake Slack (aiohttp): incoming
webhooks, chat.postMessage/chat.update, and 429 with Retry-After."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from notifier.channels.safe_http import safe_session
from notifier.channels.slack import MemoryMessageRefs, SlackChannel
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy
from notifier.receivers.loading import parse_receivers
from notifier.samples import sample_request
from opsmesh.events.alerts import AlertStatus

LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])


@dataclass
class FakeSlack:
    base: str = ""
    throttle: int = 0  # answer this many requests with 429 first
    calls: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    next_ts: int = 1000
    echo_path: bool = False

    def posted(self, path: str) -> list[dict[str, Any]]:
        return [body for p, _, body in self.calls if p == path]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()

    async def throttled(request: web.Request) -> web.Response | None:
        body = await request.json()
        fake.calls.append((request.path, dict(request.headers), body))
        if fake.throttle > 0:
            fake.throttle -= 1
            if request.path.startswith("/api/"):
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "7"}
                )
            return web.Response(status=429, text="rate_limited", headers={"Retry-After": "7"})
        return None

    async def hook(request: web.Request) -> web.Response:
        if fake.echo_path:  # a proxy's error page quoting the path alone
            return web.Response(status=404, text=f"no route for {request.path}")
        return await throttled(request) or web.Response(text="ok")

    async def post_message(request: web.Request) -> web.Response:
        if (answer := await throttled(request)) is not None:
            return answer
        if request.headers.get("Authorization") != "Bearer xoxb-test-token":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        fake.next_ts += 1
        channel = fake.calls[-1][2]["channel"]
        return web.json_response({"ok": True, "channel": channel, "ts": f"{fake.next_ts}.0001"})

    async def update(request: web.Request) -> web.Response:
        if (answer := await throttled(request)) is not None:
            return answer
        body = fake.calls[-1][2]
        return web.json_response({"ok": True, "channel": body["channel"], "ts": body["ts"]})

    app = web.Application()
    app.router.add_post("/services/T1/B1/X1", hook)
    app.router.add_post("/api/chat.postMessage", post_message)
    app.router.add_post("/api/chat.update", update)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.base = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with safe_session(LOOPBACK, timeout_s=5.0) as s:
        yield s


def make(
    config: dict[str, Any],
    session: aiohttp.ClientSession,
    refs: MemoryMessageRefs | None = None,
    policy: TargetPolicy = LOOPBACK,
) -> SlackChannel:
    receiver = parse_receivers({"receivers": [{"name": "ops", "slack_configs": [config]}]})["ops"]
    return SlackChannel(
        name="slack-0",
        receiver="ops",
        config=receiver.slack_configs[0],
        session=session,
        policy=policy,
        refs=refs or MemoryMessageRefs(),
        timeout_s=5.0,
    )


async def test_incoming_webhook_gets_block_kit_with_a_text_fallback(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    channel = make({"api_url": f"{slack.base}/services/T1/B1/X1"}, session)
    result = await channel.send(sample_request("ops"))
    assert result.ok, result
    [body] = slack.posted("/services/T1/B1/X1")
    assert body["text"].startswith("[FIRING:1] DiskAlmostFull")
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["header", "section", "context"]
    # mrkdwn: a label value cannot inject markup.
    assert "Disk &lt;sda1&gt; is 97% full &amp; climbing" in body["blocks"][1]["text"]["text"]


async def test_incoming_webhook_sends_http_config_credentials_and_keeps_them_out_of_errors(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    config = {
        "api_url": f"{slack.base}/services/T1/B1/X1",
        "http_config": {"basic_auth": {"username": "am", "password": "proxy-secret-77"}},
    }
    channel = make(config, session)
    assert (await channel.send(sample_request("ops"))).ok
    [(_, headers, _)] = slack.calls
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"am:proxy-secret-77").decode()
    slack.throttle = 1
    throttled = await channel.send(sample_request("ops"))
    assert throttled.failure is FailureKind.RATE_LIMITED
    assert "proxy-secret-77" not in (throttled.error or "")


async def test_an_error_page_quoting_the_webhook_path_does_not_show_it(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    slack.echo_path = True
    channel = make({"api_url": f"{slack.base}/services/T1/B1/X1"}, session)
    result = await channel.send(sample_request("ops"))
    assert result.failure is FailureKind.CLIENT_ERROR
    assert "T1/B1/X1" not in (result.error or "")
    assert "<secret>" in (result.error or "")


async def test_webhook_429_reports_retry_after_for_the_lane(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    slack.throttle = 1
    channel = make({"api_url": f"{slack.base}/services/T1/B1/X1"}, session)
    first = await channel.send(sample_request("ops"))
    assert first.failure is FailureKind.RATE_LIMITED
    assert first.retry_after_s == 7.0
    second = await channel.send(sample_request("ops"))
    assert second.ok


async def test_web_api_posts_then_updates_the_same_message_on_resolve(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    refs = MemoryMessageRefs()
    config = {
        "token": "xoxb-test-token",
        "channel": "C0ALERTS",
        "api_base_url": f"{slack.base}/api/",
    }
    channel = make(config, session, refs)
    assert (await channel.send(sample_request("ops"))).ok
    [posted] = slack.posted("/api/chat.postMessage")
    assert posted["channel"] == "C0ALERTS"
    assert posted["blocks"][0]["type"] == "header"
    assert "Bearer xoxb-test-token" in slack.calls[0][1]["Authorization"]

    assert (await channel.send(sample_request("ops", status=AlertStatus.RESOLVED))).ok
    [updated] = slack.posted("/api/chat.update")
    assert updated["channel"] == "C0ALERTS"
    assert updated["ts"] == "1001.0001"
    assert updated["text"].startswith("[RESOLVED] DiskAlmostFull")
    assert len(slack.posted("/api/chat.postMessage")) == 1
    assert refs.refs == {}  # the incident is over: a new firing is a new message


async def test_web_api_429_and_errors_are_classified(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    slack.throttle = 1
    config = {"token": "xoxb-test-token", "channel": "C1", "api_base_url": f"{slack.base}/api/"}
    limited = await make(config, session).send(sample_request("ops"))
    assert limited.failure is FailureKind.RATE_LIMITED
    assert limited.retry_after_s == 7.0
    bad = await make({**config, "token": "xoxb-wrong"}, session).send(sample_request("ops"))
    assert bad.failure is FailureKind.CLIENT_ERROR
    assert "invalid_auth" in (bad.error or "")
    assert "xoxb-wrong" not in json.dumps(bad.error)


async def test_private_addresses_are_refused_unless_allow_listed(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    async with safe_session(TargetPolicy(), timeout_s=5.0) as strict:
        channel = make(
            {"api_url": f"{slack.base}/services/T1/B1/X1"}, strict, policy=TargetPolicy()
        )
        result = await channel.send(sample_request("ops"))
    assert result.failure is FailureKind.REFUSED_TARGET
    assert slack.calls == []
