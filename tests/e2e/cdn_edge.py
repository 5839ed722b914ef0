"""A local stand-in for CDN providers' edges, speaking what the mesh uses of them: each
provider's canary asset (``GET /<provider>/canary.txt``, what health-aggregator's active
probe fetches) and the generic provider's purge endpoint (``POST /<provider>/purge``,
``opsmesh_client.cdn.generic``). A test switches a provider's canary between serving and
failing (503), and makes its purges refused (403) or accepted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Edges:
    base: str = ""
    failing: set[str] = field(default_factory=set)  # providers whose canary answers 503
    refusing: set[str] = field(default_factory=set)  # providers whose purges answer 403
    purges: list[tuple[str, int]] = field(default_factory=list)  # (provider, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def canary_url(self, provider: str) -> str:
        return f"{self.base}/{provider}/canary.txt"

    def purge_url(self, provider: str) -> str:
        return f"{self.base}/{provider}/purge"

    def fail(self, provider: str, failing: bool = True) -> None:
        with self.lock:
            (self.failing.add if failing else self.failing.discard)(provider)

    def answered(self, provider: str) -> list[int]:
        with self.lock:
            return [status for name, status in self.purges if name == provider]


def _serve(edges: Edges, started: threading.Event, stop: threading.Event) -> None:
    loop = asyncio.new_event_loop()

    async def canary(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        with edges.lock:
            down = provider in edges.failing
        if down:
            return web.Response(status=503, text="edge unavailable")
        return web.Response(text=f"canary {provider}")

    async def purge(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        await request.read()
        with edges.lock:
            status = 403 if provider in edges.refusing else 200
            edges.purges.append((provider, status))
        return web.Response(status=status, text="invalid token" if status == 403 else "ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{provider}/canary.txt", canary)
        app.router.add_post("/{provider}/purge", purge)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        edges.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        started.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    loop.run_until_complete(main())
    loop.close()


@contextmanager
def running_edges() -> Iterator[Edges]:
    edges, started, stop = Edges(), threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve, args=(edges, started, stop), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the CDN edges did not start")
    try:
        yield edges
    finally:
        stop.set()
        thread.join(10)
