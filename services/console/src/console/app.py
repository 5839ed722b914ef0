"""The composition root: the one place the console is wired together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from console.api import alerts, auth, boards, deliveries, live, runbooks, silences
from console.bootstrap import SERVICES, Services, bootstrap, workers
from console.settings import ConsoleSettings
from opsmesh.clock import Clock, SystemClock
from opsmesh.web import Bootstrap, ReadinessCheck, ServiceSpec, init_app

SERVICE = "console"
STATIC = Path(__file__).parent / "static"

OpenServices = Callable[[ConsoleSettings, Clock, CollectorRegistry], Awaitable[Services]]


def build(
    settings: ConsoleSettings,
    clock: Clock | None = None,
    open_services: OpenServices = bootstrap,
) -> web.Application:
    clock = clock or SystemClock()
    registry = CollectorRegistry()
    opened: list[Services] = []

    async def open_() -> Services:
        services = await open_services(settings, clock, registry)
        opened.append(services)
        return services

    async def feed_read() -> None:
        if not opened:
            raise RuntimeError("starting")
        await opened[0].feed.ready()

    def routes(app: web.Application) -> None:
        app.router.add_static("/static", STATIC)
        auth.register(app)
        alerts.register(app)
        silences.register(app)
        boards.register(app)
        deliveries.register(app)
        live.register(app)
        runbooks.register(app)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=registry,
            readiness=lambda: [ReadinessCheck("alert-engine", feed_read)],
            bootstrap=Bootstrap(SERVICES, open_, workers),
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
            middlewares=[auth.security_headers, auth.sessions_and_csrf],
        )
    )
