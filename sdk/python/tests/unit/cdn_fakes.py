"""Local HTTP servers that speak each provider's purge protocol, for the adapters' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeServer:
    """Records every request; ``fail_next`` answers the next requests with these statuses."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)


Handler = Callable[[web.Request, FakeServer], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(routes: list[tuple[str, str, Handler]]) -> AsyncIterator[FakeServer]:
    fake = FakeServer()

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            try:
                body: Any = await request.json() if raw else None
            except ValueError:
                body = raw.decode()
            fake.requests.append(
                Recorded(request.method, request.path_qs, dict(request.headers), body)
            )
            if fake.fail_next:
                status = fake.fail_next.pop(0)
                return web.json_response({"error": f"injected {status}"}, status=status)
            return await handler(request, fake)

        return run

    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, wrap(handler))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
