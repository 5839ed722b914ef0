"""A service's objects are made once its resources are open, reached by handlers and
workers under one typed key, and closed after the workers drained, before the resources."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from aiohttp import ClientTimeout, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from opsmesh.web import Bootstrap, ServiceSpec, Worker, init_app


@dataclass
class Services:
    greeting: str
    events: list[str] = field(default_factory=list)

    async def aclose(self) -> None:
        self.events.append("services closed")


KEY = web.AppKey("test.services", Services)


async def test_services_open_after_resources_and_close_between_workers_and_resources() -> None:
    events: list[str] = []
    drained = asyncio.Event()

    async def resource(_: web.Application) -> AsyncIterator[None]:
        events.append("resource opened")
        yield
        events.append("resource closed")

    async def bootstrap() -> Services:
        # Made only once the resource is open: what a store needs is there.
        assert events == ["resource opened"]
        return Services("hello", events)

    def workers(services: Services) -> Sequence[tuple[str, Worker]]:
        async def work(stop: asyncio.Event) -> None:
            services.events.append(f"worker saw {services.greeting}")
            await stop.wait()
            services.events.append("worker drained")
            drained.set()

        return [("work", work)]

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=request.app[KEY].greeting)

    def routes(app: web.Application) -> None:
        app.router.add_get("/hello", hello)

    app = init_app(
        ServiceSpec(
            name="t",
            registry=CollectorRegistry(),
            resources=[resource],
            bootstrap=Bootstrap(KEY, bootstrap, workers),
            routes=routes,
            drain_timeout_s=5,
        )
    )
    client = TestClient(TestServer(app), timeout=ClientTimeout(total=10))
    await client.start_server()
    try:
        response = await client.get("/hello")
        assert await response.text() == "hello"
    finally:
        await client.close()
    assert drained.is_set()
    assert events == [
        "resource opened",
        "worker saw hello",
        "worker drained",
        "services closed",
        "resource closed",
    ]


async def test_services_without_aclose_need_no_closing() -> None:
    plain = web.AppKey("test.plain", str)

    async def bootstrap() -> str:
        return "plain"

    app = init_app(
        ServiceSpec(name="t", registry=CollectorRegistry(), bootstrap=Bootstrap(plain, bootstrap))
    )
    client = TestClient(TestServer(app), timeout=ClientTimeout(total=10))
    await client.start_server()
    try:
        assert client.app is not None
        assert client.app[plain] == "plain"
    finally:
        await client.close()
