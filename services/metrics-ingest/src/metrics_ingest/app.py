"""The composition root: the one place metrics-ingest is wired together.

Pure wiring: it opens nothing. Kafka and PostgreSQL open as cleanup contexts, then
``open_services`` (``metrics_ingest.bootstrap.bootstrap``; a test's fakes) makes the
service's objects from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from metrics_ingest.api import routes
from metrics_ingest.bootstrap import SERVICES, Services, bootstrap, ingest_limits, workers
from metrics_ingest.settings import MetricsIngestSettings
from opsmesh.clock import Clock
from opsmesh.runtime import Runtime
from opsmesh.web import Bootstrap, ServiceSpec, init_app

SERVICE = "metrics-ingest"

OpenServices = Callable[[Runtime, MetricsIngestSettings], Awaitable[Services]]


def build(
    settings: MetricsIngestSettings,
    clock: Clock | None = None,
    open_services: OpenServices = bootstrap,
) -> web.Application:
    # Every series key is published (its windows' signals, HTTP samples): remember the
    # partitions of up to a million keys.
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock, partition_cache=1_000_000)

    async def open_() -> Services:
        return await open_services(runtime, settings)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("metrics_ingest.migrations")],
            bootstrap=Bootstrap(SERVICES, open_, workers(runtime, settings)),
            readiness=runtime.readiness,
            workers=runtime.with_self_report(lambda: ()),
            routes=routes(ingest_limits(settings), settings.max_body_bytes),
            drain_timeout_s=settings.shutdown_timeout_s,
            client_max_size=settings.max_body_bytes,
            auto_decompress=False,  # api.gate decompresses, bounded (rollup/decompress.py)
        )
    )
