"""PagerDutyChannel against a fake Events API v2 served over TLS with a test CA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from notifier.channels.pagerduty import PagerDutyChannel
from notifier.channels.safe_http import safe_session
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy
from notifier.receivers.loading import parse_receivers
from notifier.samples import sample_request
from opsmesh.events.alerts import AlertStatus

LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])
ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"


@dataclass
class FakePagerDuty:
    url: str = ""
    answers: list[int] = field(default_factory=list)  # statuses to answer before 202
    events: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def pagerduty(certs: Any) -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty()

    async def enqueue(request: web.Request) -> web.Response:
        body = await request.json()
        if fake.answers:
            status = fake.answers.pop(0)
            headers = {"Retry-After": "3"} if status == 429 else {}
            return web.json_response({"status": "error"}, status=status, headers=headers)
        fake.events.append(body)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]},
            status=202,
        )

    app = web.Application()
    app.router.add_post("/v2/enqueue", enqueue)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_context())
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"https://localhost:{port}/v2/enqueue"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def session(certs: Any) -> AsyncIterator[aiohttp.ClientSession]:
    async with safe_session(LOOPBACK, timeout_s=5.0, ssl_context=certs.client_context()) as s:
        yield s


def make(url: str, session: aiohttp.ClientSession) -> PagerDutyChannel:
    config = {"routing_key": ROUTING_KEY, "url": url, "source": "opsmesh-test"}
    receiver = parse_receivers({"receivers": [{"name": "ops", "pagerduty_configs": [config]}]})
    return PagerDutyChannel(
        name="pagerduty-0",
        config=receiver["ops"].pagerduty_configs[0],
        session=session,
        policy=LOOPBACK,
    )


async def test_trigger_then_resolve_share_the_dedup_key(
    pagerduty: FakePagerDuty, session: aiohttp.ClientSession
) -> None:
    channel = make(pagerduty.url, session)
    assert (await channel.send(sample_request("ops"))).ok
    assert (await channel.send(sample_request("ops", status=AlertStatus.RESOLVED))).ok
    trigger, resolve = pagerduty.events
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["payload"]["severity"] == "critical"  # severity=page
    assert trigger["payload"]["source"] == "opsmesh-test"
    assert trigger["payload"]["summary"].startswith("[FIRING:1] DiskAlmostFull: Disk <sda1>")
    assert {"href": "https://runbooks.example.com/disk-almost-full", "text": "Runbook"} in trigger[
        "links"
    ]
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


@pytest.mark.parametrize(
    ("status", "kind", "retry_after"),
    [
        (429, FailureKind.RATE_LIMITED, 3.0),
        (500, FailureKind.SERVER_ERROR, None),
        (400, FailureKind.CLIENT_ERROR, None),
    ],
)
async def test_answers_are_classified(
    pagerduty: FakePagerDuty,
    session: aiohttp.ClientSession,
    status: int,
    kind: FailureKind,
    retry_after: float | None,
) -> None:
    pagerduty.answers = [status]
    result = await make(pagerduty.url, session).send(sample_request("ops"))
    assert result.failure is kind
    assert result.retry_after_s == retry_after
    assert ROUTING_KEY not in (result.error or "")


async def test_tls_is_verified(pagerduty: FakePagerDuty) -> None:
    # Without the test CA the self-signed chain is refused: verification is never off.
    async with safe_session(LOOPBACK, timeout_s=5.0) as untrusting:
        result = await make(pagerduty.url, untrusting).send(sample_request("ops"))
    assert result.failure is FailureKind.NETWORK
    assert "certificate" in (result.error or "").lower()
    assert pagerduty.events == []
