"""The composition root: the one place query-analyzer is wired together.

Pure wiring: it opens nothing. Kafka and PostgreSQL open as cleanup contexts, then
``open_services`` (``query_analyzer.bootstrap.bootstrap``; a test's fakes) makes the
service's objects from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from opsmesh.clock import Clock
from opsmesh.runtime import Runtime
from opsmesh.web import Bootstrap, ServiceSpec, init_app
from query_analyzer.api import add_routes
from query_analyzer.bootstrap import SERVICES, Services, bootstrap, workers
from query_analyzer.settings import QueryAnalyzerSettings

SERVICE = "query-analyzer"

OpenServices = Callable[[Runtime, QueryAnalyzerSettings], Awaitable[Services]]


def build(
    settings: QueryAnalyzerSettings,
    clock: Clock | None = None,
    open_services: OpenServices = bootstrap,
) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)

    async def open_() -> Services:
        return await open_services(runtime, settings)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("query_analyzer.migrations")],
            bootstrap=Bootstrap(SERVICES, open_, workers(runtime, settings)),
            readiness=runtime.readiness,
            workers=runtime.with_self_report(lambda: ()),
            routes=add_routes,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
