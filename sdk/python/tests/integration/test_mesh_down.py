"""With no broker to reach, requests are not slowed and what could not be sent is counted.

The client points librdkafka at a loopback port nothing listens on (the session's broker
is shared by every test, so it is not the one stopped here); the ASGI app's requests each
send a query event. Requests stay fast while the outbox and librdkafka's queue fill, and
every record is accounted for at shutdown: accepted and delivered, or dropped by reason.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from opsmesh_client.client import Client
from opsmesh_client.integrations.asgi import OpsmeshMiddleware
from opsmesh_client.settings import load

pytestmark = pytest.mark.integration
REQUESTS = 300
SEND_TIMEOUT_S = 2.0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_requests_are_not_slowed_and_drops_are_counted_when_kafka_is_down() -> None:
    client = Client(
        load(
            {},
            service="shop",
            kafka=f"127.0.0.1:{closed_port()}",
            buffer_size=100,
            flush_interval_s=0.02,
            send_timeout_s=SEND_TIMEOUT_S,
            heartbeat_interval_s=3600,
        )
    )

    async def page(request: Request) -> PlainTextResponse:
        client.query("SELECT 1", 0.001, started_at=time.time())
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", page)])
    app.add_middleware(OpsmeshMiddleware, client=client)
    slowest = 0.0
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
            for _ in range(REQUESTS):
                started = time.perf_counter()
                assert (await http.get("/")).status_code == 200
                slowest = max(slowest, time.perf_counter() - started)
    finally:
        await asyncio.to_thread(client.close, 5.0)
    # Nothing on the request path waits for the broker: a request that waited for a
    # delivery would take at least the delivery timeout. Half of it leaves room for a busy
    # 2-core machine (0.35 s seen) without letting a wait on the broker pass.
    assert slowest < SEND_TIMEOUT_S / 2
    stats = client.stats()
    dropped = stats["dropped"]
    assert dropped["send_failed"] > 0  # librdkafka held some, then gave up on them
    # Every record the outbox took (the 300 queries, a heartbeat, the request metrics
    # collected at close) was dropped and counted: none lost silently.
    assert dropped["send_failed"] + dropped.get("transport_full", 0) == stats["accepted"]
    assert stats["accepted"] + dropped.get("buffer_full", 0) >= REQUESTS + 1
