"""Bounded HTTP connections: a limit on open connections per process, a deadline for a new
connection's request headers, and a keep-alive timeout.

Without them every idle connection holds a file descriptor for as long as the client
likes (aiohttp keeps an idle keep-alive connection for an hour and waits for a first
request forever), so 20k idle sockets or a slowloris client exhaust the process's
descriptors. The guard wraps aiohttp's protocol factory: a connection beyond the limit is
answered ``503`` and closed before aiohttp sees it; one whose first request's headers are
not complete within ``header_timeout_s`` is closed (later requests on a connection are
bounded by aiohttp's own ``keepalive_timeout``). A request, body included, must be read
and answered within ``request_timeout_s`` (``request_deadline``, a middleware every
service app has): a body sent one byte at a time is cut off there.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from opsmesh.logging import get_logger

log = get_logger(__name__)

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 25\r\n\r\ntoo many open connections"
)


class Refusal(enum.StrEnum):
    """Why a connection was closed by the guard (``reason`` of the refused counter)."""

    LIMIT = "limit"  # the process held its maximum of open connections
    HEADER_TIMEOUT = "header_timeout"  # the first request's headers came too slowly


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = 512
    keepalive_timeout_s: float = 75.0
    header_timeout_s: float = 10.0
    request_timeout_s: float = 60.0


LINGERING_S = 2.0
REQUEST_TIMEOUT_KEY = web.AppKey("request_timeout_s", float)


@web.middleware
async def request_deadline(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bound a request's time to be read and answered (set by ``start_guarded``): 408 if
    its body had not all arrived, 503 otherwise; the connection is closed either way."""
    timeout = request.app.get(REQUEST_TIMEOUT_KEY)
    if timeout is None:
        return await handler(request)
    try:
        async with asyncio.timeout(timeout):
            return await handler(request)
    except TimeoutError:
        slow_body = request.can_read_body and not request.content.at_eof()
        response = web.Response(
            status=408 if slow_body else 503,
            text="request body too slow" if slow_body else "request timed out",
        )
        response.force_close()
        return response


class ConnectionGuard:
    def __init__(self, limits: ConnectionLimits, registry: CollectorRegistry) -> None:
        self.limits = limits
        self.open = 0
        self._gauge = Gauge(
            "opsmesh_http_connections_open", "HTTP connections open", registry=registry
        )
        refused = Counter(
            "opsmesh_http_connections_refused",
            "HTTP connections closed by the guard, by reason",
            ["reason"],
            registry=registry,
        )
        self._refused = {reason: refused.labels(reason.value) for reason in Refusal}

    def factory(self, inner: Callable[[], asyncio.BaseProtocol]) -> Callable[[], _Guarded]:
        return lambda: _Guarded(self, inner)

    def _opened(self) -> None:
        self.open += 1
        self._gauge.set(self.open)

    def _closed(self) -> None:
        self.open -= 1
        self._gauge.set(self.open)

    def _refuse(self, reason: Refusal) -> None:
        self._refused[reason].inc()


class _Guarded(asyncio.Protocol):
    """One connection: counted, refused past the limit, or handed to aiohttp's handler."""

    def __init__(self, guard: ConnectionGuard, inner: Callable[[], asyncio.BaseProtocol]) -> None:
        self._guard = guard
        self._factory = inner
        self._inner: Any = None  # aiohttp's RequestHandler once accepted
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open >= guard.limits.max_connections:
            guard._refuse(Refusal.LIMIT)
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(_BUSY)
            transport.close()
            return
        guard._opened()
        self._deadline = asyncio.get_running_loop().call_later(
            guard.limits.header_timeout_s, self._too_slow, transport
        )
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self._deadline is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen or b"\n\n" in seen:  # the first request's headers ended
                self._deadline.cancel()
                self._deadline = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._inner is not None:
            self._guard._closed()
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def _too_slow(self, transport: asyncio.BaseTransport) -> None:
        self._deadline = None
        self._guard._refuse(Refusal.HEADER_TIMEOUT)
        if isinstance(transport, asyncio.Transport):
            transport.abort()  # connection_lost follows, which releases the slot
        else:
            transport.close()


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` whose connections go through a ``ConnectionGuard``."""

    def __init__(self, runner: web.BaseRunner, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(runner, **kwargs)
        self._guard = guard

    async def start(self) -> None:
        # BaseSite.start registers the site with its runner; then listen with the guard
        # in front of the runner's protocol factory (what TCPSite.start does, guarded).
        await web.BaseSite.start(self)
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner is not set up")
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else (self._port or 0)

    @property
    def port(self) -> int:
        return int(self._bound_port or 0)


async def start_guarded(
    app: web.Application,
    *,
    host: str,
    port: int,
    limits: ConnectionLimits,
    registry: CollectorRegistry,
    shutdown_timeout_s: float,
) -> tuple[web.AppRunner, GuardedSite]:
    """Set up ``app`` and listen on ``host:port`` behind the guard; the caller cleans the
    runner up (``await runner.cleanup()``)."""
    app[REQUEST_TIMEOUT_KEY] = limits.request_timeout_s
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=limits.keepalive_timeout_s,
        # After answering a request whose body was not read to its end, aiohttp reads and
        # drops the rest for this long (so the client sees the answer, not a reset): a
        # slow body must not keep its connection for aiohttp's default 10 s more.
        lingering_time=LINGERING_S,
        shutdown_timeout=shutdown_timeout_s,
    )
    await runner.setup()
    site = GuardedSite(runner, ConnectionGuard(limits, registry), host=host, port=port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site
