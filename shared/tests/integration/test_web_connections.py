"""The web kit's connection guard on a real service app over loopback: connections past
the limit are answered 503 and closed, a normal request succeeds once under the limit
again, slowloris clients (headers or body one byte at a time) are cut off, and the
metrics count it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from opsmesh.web.app import ServiceSpec, init_app
from opsmesh.web.connections import ConnectionLimits, start_guarded

pytestmark = pytest.mark.integration

LIMITS = ConnectionLimits(
    max_connections=3, keepalive_timeout_s=30.0, header_timeout_s=0.5, request_timeout_s=1.0
)


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


def routes(app: web.Application) -> None:
    app.router.add_post("/echo", echo)


@pytest.fixture
async def service() -> AsyncIterator[tuple[int, CollectorRegistry]]:
    registry = CollectorRegistry()
    app = init_app(ServiceSpec(name="guarded", registry=registry, routes=routes))
    runner, site = await start_guarded(
        app,
        host="127.0.0.1",
        port=0,
        limits=LIMITS,
        registry=registry,
        shutdown_timeout_s=1.0,
    )
    try:
        yield site.port, registry
    finally:
        await runner.cleanup()


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)  # polling interval of a condition wait


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded wait). A byte
    the client writes after the server closed makes its kernel answer with a reset:
    what arrived before it is kept (``read()`` until EOF would drop it and raise)."""
    received = bytearray()

    async def drain() -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)

    with contextlib.suppress(ConnectionResetError):
        await asyncio.wait_for(drain(), timeout=10)
    return bytes(received)


async def get(port: int, path: str) -> int:
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(timeout=timeout, connector=connector) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        await response.read()
        return response.status


async def test_connections_past_the_limit_are_refused_and_counted(
    service: tuple[int, CollectorRegistry],
) -> None:
    port, registry = service
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(LIMITS.max_connections)]
    await until(
        lambda: metric(registry, "opsmesh_http_connections_open") == 3, "3 connections open"
    )
    extra = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    for reader, _ in extra:
        answer = await closed_by_server(reader)
        assert answer.startswith(b"HTTP/1.1 503"), answer
    assert metric(registry, "opsmesh_http_connections_refused_total", reason="limit") == 2
    assert metric(registry, "opsmesh_http_connections_open") == 3

    _, writer = idle.pop()
    writer.close()
    await writer.wait_closed()
    await until(lambda: metric(registry, "opsmesh_http_connections_open") == 2, "a slot freed")
    assert await get(port, "/health/live") == 200
    for _, writer in [*idle, *extra]:
        writer.close()
    await until(lambda: metric(registry, "opsmesh_http_connections_open") == 0, "all closed")


async def test_idle_connections_without_a_request_are_closed_after_the_header_timeout(
    service: tuple[int, CollectorRegistry],
) -> None:
    port, registry = service
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await closed_by_server(reader) == b""
    writer.close()
    assert metric(registry, "opsmesh_http_connections_refused_total", reason="header_timeout") == 1


async def test_a_slowloris_client_is_disconnected(service: tuple[int, CollectorRegistry]) -> None:
    port, registry = service
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 4096
    closed = asyncio.create_task(closed_by_server(reader))

    async def trickle() -> None:
        for byte in request:  # one byte at a time, each 50 ms apart (the client's pace)
            if closed.done():
                return
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:  # closed between the check and the write
                return
            await asyncio.sleep(0.05)

    sending: Awaitable[None] = asyncio.create_task(trickle())
    assert await closed == b"", "disconnected before its headers ended"
    await sending
    writer.close()
    assert metric(registry, "opsmesh_http_connections_refused_total", reason="header_timeout") == 1
    assert await get(port, "/health/live") == 200, "others are served meanwhile"


async def test_a_body_sent_one_byte_at_a_time_is_cut_off(
    service: tuple[int, CollectorRegistry],
) -> None:
    port, _ = service
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    answer = asyncio.create_task(closed_by_server(reader))
    for _ in range(1000):  # one byte every 50 ms: 50 s for the body, if nothing cut it off
        if answer.done():
            break
        try:
            writer.write(b"a")
            await writer.drain()
        except ConnectionError:  # closed between the check and the write
            break
        await asyncio.sleep(0.05)
    assert (await answer).startswith(b"HTTP/1.1 408"), "answered 408 and closed"
    writer.close()
    assert await get(port, "/health/live") == 200
