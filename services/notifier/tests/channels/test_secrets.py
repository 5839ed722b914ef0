"""Secrets never leave in an error or a log line: each channel against a destination that
echoes the whole request back in its error answer, and against one that refuses the
connection, through the lane's sender (which logs every retry), with the service's own
logging pipeline writing to a captured stderr."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
import structlog
from aiohttp import web

from notifier.channels.base import Channel, SendResult
from notifier.channels.pagerduty import PagerDutyChannel
from notifier.channels.safe_http import Redactor, safe_session
from notifier.channels.slack import MemoryMessageRefs, SlackChannel
from notifier.channels.webhook import WebhookChannel
from notifier.core.retry import RetryPolicy
from notifier.core.targets import TargetPolicy
from notifier.pipeline.lanes import Destination, Job, Sender
from notifier.receivers.loading import parse_receivers
from notifier.samples import sample_request
from opsmesh.clock import SystemClock
from opsmesh.logging import configure_logging, get_logger, redact_urls
from opsmesh_dev.infra.process import free_port
from opsmesh_dev.testing.clock import FakeClock

LOOPBACK = TargetPolicy.from_strings(["127.0.0.0/8"])
WEBHOOK_TOKEN = "tok-3b1f9c0d7e2a"
WEBHOOK_PATH_SECRET = "pathsecret-91ad"
SIGNING = "whsec_c2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="
SLACK_PATH = "T0SECRET/B0SECRET/XXSLACKSECRETXX"
SLACK_TOKEN = "xoxb-1111-2222-SLACKTOKENSECRET"
ROUTING_KEY = "R0UTINGKEYSECRET0123456789abcdef"
SECRETS = [WEBHOOK_TOKEN, WEBHOOK_PATH_SECRET, SIGNING, SLACK_PATH, SLACK_TOKEN, ROUTING_KEY]


@dataclass
class Echo:
    base: str = ""


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    """Answers every request with an error whose body is the request, URL and headers
    included: what a hostile or merely chatty destination may do."""
    state = Echo()

    async def mirror(request: web.Request) -> web.Response:
        body = (await request.read()).decode(errors="replace")
        dump = json.dumps({"body": body, "url": str(request.url), "headers": dict(request.headers)})
        status = 400 if "permanent" in request.path else 500
        return web.Response(status=status, text=dump)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", mirror)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
def logs() -> Iterator[Callable[[], str]]:
    """The service's logging pipeline, its one handler writing to a buffer here."""
    configure_logging("notifier-test", "INFO")  # as the service runs
    # A logger cached now would keep this pipeline after reset_defaults, and
    # structlog.testing.capture_logs in later tests would not see its events.
    structlog.configure(cache_logger_on_first_use=False)
    buffer = io.StringIO()
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer.getvalue
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()


def channels(base: str, session: aiohttp.ClientSession) -> list[Channel]:
    slack_hook = parse_receivers(
        {"receivers": [{"name": "ops", "slack_configs": [{"api_url": f"{base}/{SLACK_PATH}"}]}]}
    )["ops"].slack_configs[0]
    slack_api = parse_receivers(
        {
            "receivers": [
                {
                    "name": "ops",
                    "slack_configs": [
                        {"token": SLACK_TOKEN, "channel": "#ops", "api_base_url": f"{base}/api/"}
                    ],
                }
            ]
        }
    )["ops"].slack_configs[0]
    pd = parse_receivers(
        {
            "receivers": [
                {
                    "name": "ops",
                    "pagerduty_configs": [
                        {"routing_key": ROUTING_KEY, "url": f"{base}/permanent/enqueue"}
                    ],
                }
            ]
        }
    )["ops"].pagerduty_configs[0]
    common = {"receiver": "ops", "session": session, "policy": LOOPBACK}
    return [
        WebhookChannel(
            name="webhook-0",
            url=f"{base}/hooks/{WEBHOOK_PATH_SECRET}?token={WEBHOOK_TOKEN}",
            secrets=[SIGNING],
            session=session,
            policy=LOOPBACK,
            clock=FakeClock(1_700_000_000.0),
        ),
        SlackChannel(
            name="slack-0", config=slack_hook, refs=MemoryMessageRefs(), timeout_s=5.0, **common
        ),
        SlackChannel(
            name="slack-1", config=slack_api, refs=MemoryMessageRefs(), timeout_s=5.0, **common
        ),
        PagerDutyChannel(name="pagerduty-0", config=pd, session=session, policy=LOOPBACK),
    ]


async def send_with_retries(channel: Channel) -> SendResult:
    sender = Sender(
        retry=RetryPolicy(initial_s=0.01, max_s=0.02, deadline_s=0.15),
        clock=SystemClock(),
        stop=asyncio.Event(),
        rng=random.Random(3),
    )
    destination = Destination(
        receiver="ops", integration=channel.name, channel=channel, send_resolved=True, concurrency=1
    )
    return await sender.send(
        Job(sample_request("ops"), destination, True, SystemClock().monotonic())
    )


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def test_an_echoing_destination_cannot_put_secrets_in_errors_or_logs(
    echo: Echo, logs: Callable[[], str]
) -> None:
    async with safe_session(LOOPBACK, timeout_s=5.0) as session:
        results = [await send_with_retries(c) for c in channels(echo.base, session)]
    for result in results:
        assert not result.ok
        assert result.error is not None
        assert_no_secret(result.error)
    # The echo did reach the errors (redacted), so the check above is not vacuous.
    assert any("<secret>" in (r.error or "") for r in results)
    output = logs()
    assert "delivery failed; retrying" in output
    assert_no_secret(output)


async def test_a_refused_connection_names_no_secret(logs: Callable[[], str]) -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens
    async with safe_session(LOOPBACK, timeout_s=5.0) as session:
        results = [await send_with_retries(c) for c in channels(base, session)]
    for result in results:
        assert not result.ok
        assert result.error is not None
        assert "127.0.0.1" in result.error
        assert_no_secret(result.error)
    assert_no_secret(logs())


def test_logged_exceptions_carry_no_url_path_or_query(logs: Callable[[], str]) -> None:
    log = get_logger("test")
    try:
        raise aiohttp.InvalidURL(f"https://hooks.slack.com/services/{SLACK_PATH}")
    except aiohttp.InvalidURL:
        log.exception("failed", url=f"https://x.example/hook?token={WEBHOOK_TOKEN}")
    logging.getLogger("aiohttp.client").warning(
        "stdlib logger: %s", f"https://u:{WEBHOOK_TOKEN}@h.example/"
    )
    output = logs()
    assert "hooks.slack.com/..." in output
    assert "x.example/..." in output
    assert_no_secret(output)


def test_redaction_is_one_function() -> None:
    assert redact_urls(f"https://u:{SLACK_TOKEN}@h.example:8443/{SLACK_PATH}?t=1") == (
        "https://h.example:8443/..."
    )
    redact = Redactor([ROUTING_KEY])
    assert redact(f'{{"routing_key": "{ROUTING_KEY}"}}\x00') == '{"routing_key": "<secret>"}\\x00'
