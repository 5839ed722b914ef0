"""WebhookChannel against a real local HTTP server, verified with ``standardwebhooks``."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifier.channels.safe_http import safe_session
from notifier.channels.webhook import WebhookChannel
from notifier.core.retry import FailureKind
from notifier.core.targets import TargetPolicy
from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested, NotifyReason
from opsmesh_dev.testing.clock import FakeClock

SECRET_OLD = "whsec_" + base64.b64encode(b"old-secret-0123456789abcdef").decode()
SECRET_NEW = "whsec_" + base64.b64encode(b"new-secret-0123456789abcdef").decode()
SECRET_OTHER = "whsec_" + base64.b64encode(b"someone-else-0123456789abc").decode()
LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])


@dataclass
class Receiver:
    """A local webhook receiver that records requests and answers as told."""

    url: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def hook(request: web.Request) -> web.Response:
        state.seen.append((dict(request.headers), await request.read()))
        return web.Response(status=state.status, headers=state.headers, text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    # Receivers check webhook-timestamp against their own wall clock, so start there.
    return FakeClock(time.time())


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with safe_session(LOOPBACK, timeout_s=5.0) as s:
        yield s


def request(key: str = "idem-key-1") -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=key,
        receiver="team",
        group_key='{}:{alertname="DiskFull"}',
        status=AlertStatus.FIRING,
        reason=NotifyReason.FIRST_NOTIFICATION,
        group_labels={"alertname": "DiskFull"},
        alerts=[
            Alert(
                fingerprint="0123456789abcdef",
                status=AlertStatus.FIRING,
                labels={"alertname": "DiskFull", "host": "a"},
                starts_at=1_700_000_000.0,
            )
        ],
        requested_at=1_700_000_000.0,
    )


def channel(
    url: str,
    session: aiohttp.ClientSession,
    clock: FakeClock,
    *,
    secrets: tuple[str, ...] = (SECRET_NEW,),
    policy: TargetPolicy = LOOPBACK,
) -> WebhookChannel:
    return WebhookChannel(
        name="webhook", url=url, secrets=secrets, session=session, policy=policy, clock=clock
    )


async def test_delivers_a_signed_payload(
    receiver: Receiver, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    result = await channel(receiver.url, session, clock).send(request())
    assert result.ok
    assert result.status_code == 200
    assert result.failure is None
    ((headers, body),) = receiver.seen
    payload = Webhook(SECRET_NEW).verify(body, headers)
    assert payload["version"] == "4"
    assert payload["groupKey"] == '{}:{alertname="DiskFull"}'
    assert payload["alerts"][0]["fingerprint"] == "0123456789abcdef"
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-timestamp"] == str(int(clock.now()))


async def test_webhook_id_is_the_idempotency_key(
    receiver: Receiver, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    ch = channel(receiver.url, session, clock)
    await ch.send(request("key-A"))
    await ch.send(request("key-A"))
    await ch.send(request("key-B"))
    assert [h["webhook-id"] for h, _ in receiver.seen] == ["key-A", "key-A", "key-B"]


async def test_a_signature_from_another_secret_does_not_verify(
    receiver: Receiver, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await channel(receiver.url, session, clock).send(request())
    ((headers, body),) = receiver.seen
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(SECRET_OTHER).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_NEW).verify(body + b" ", headers)


async def test_rotation_signs_with_every_secret(
    receiver: Receiver, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    ch = channel(receiver.url, session, clock, secrets=(SECRET_OLD, SECRET_NEW))
    assert (await ch.send(request())).ok
    ((headers, body),) = receiver.seen
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET_OLD).verify(body, headers)  # a receiver not yet rotated
    Webhook(SECRET_NEW).verify(body, headers)  # a receiver already rotated


async def test_timestamp_comes_from_the_injected_clock(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    stale = FakeClock(time.time() - 3600)
    await channel(receiver.url, session, stale).send(request())
    ((headers, body),) = receiver.seen
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET_NEW).verify(body, headers)


async def test_no_secrets_sends_unsigned(
    receiver: Receiver, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    assert (await channel(receiver.url, session, clock, secrets=()).send(request())).ok
    ((headers, _),) = receiver.seen
    assert "webhook-signature" not in headers
    assert headers["webhook-id"] == "idem-key-1"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, FailureKind.SERVER_ERROR),
        (503, FailureKind.SERVER_ERROR),
        (429, FailureKind.RATE_LIMITED),
    ],
)
async def test_server_errors_and_rate_limits_are_retryable_with_retry_after(
    receiver: Receiver,
    session: aiohttp.ClientSession,
    clock: FakeClock,
    status: int,
    kind: FailureKind,
) -> None:
    receiver.status = status
    receiver.headers = {"Retry-After": "7"}
    result = await channel(receiver.url, session, clock).send(request())
    assert not result.ok
    assert (result.status_code, result.failure, result.retry_after_s) == (status, kind, 7.0)
    assert result.failure.retryable
    assert result.error is not None
    assert str(status) in result.error


async def test_retry_after_as_an_http_date(
    receiver: Receiver, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    receiver.status = 503
    when = datetime.fromtimestamp(int(clock.now()) + 120, UTC)
    receiver.headers = {"Retry-After": format_datetime(when, usegmt=True)}
    result = await channel(receiver.url, session, clock).send(request())
    assert result.retry_after_s == pytest.approx(120.0, abs=1.0)


@pytest.mark.parametrize(("header", "expected"), [(None, None), ("soon", None), ("-5", 0.0)])
async def test_retry_after_missing_or_invalid(
    receiver: Receiver,
    session: aiohttp.ClientSession,
    clock: FakeClock,
    header: str | None,
    expected: float | None,
) -> None:
    receiver.status = 503
    receiver.headers = {"Retry-After": header} if header is not None else {}
    result = await channel(receiver.url, session, clock).send(request())
    assert result.failure is FailureKind.SERVER_ERROR
    assert result.retry_after_s == expected


@pytest.mark.parametrize("status", [400, 401, 404, 410])
async def test_client_errors_are_not_retryable(
    receiver: Receiver, session: aiohttp.ClientSession, clock: FakeClock, status: int
) -> None:
    receiver.status = status
    result = await channel(receiver.url, session, clock).send(request())
    assert not result.ok
    assert (result.status_code, result.failure) == (status, FailureKind.CLIENT_ERROR)
    assert not result.failure.retryable


async def test_connection_refused_is_a_network_failure(
    session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    result = await channel(f"http://127.0.0.1:{port}/hook", session, clock).send(request())
    assert not result.ok
    assert result.failure is FailureKind.NETWORK
    assert result.failure.retryable


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost"])
async def test_non_allow_listed_loopback_is_refused(
    receiver: Receiver, clock: FakeClock, host: str
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://{host}:{port}/hook"
    async with safe_session(TargetPolicy(), timeout_s=5.0) as strict:
        result = await channel(url, strict, clock, policy=TargetPolicy()).send(request())
    assert not result.ok
    assert result.failure is FailureKind.REFUSED_TARGET
    assert not result.failure.retryable
    assert result.error is not None
    assert "non-public address" in result.error
    assert receiver.seen == []


async def test_redirects_are_not_followed(
    receiver: Receiver, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    receiver.status = 307
    receiver.headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    result = await channel(receiver.url, session, clock).send(request())
    assert not result.ok
    assert result.failure is FailureKind.REDIRECTED
    assert not result.failure.retryable
    assert result.status_code == 307
    assert result.error is not None
    assert "redirects are not followed" in result.error
    assert "meta-data" not in result.error  # a Location's path may carry secrets
    assert len(receiver.seen) == 1
