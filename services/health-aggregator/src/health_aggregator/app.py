"""The composition root: the one place health-aggregator is wired together.

Pure wiring: it opens nothing. Kafka and PostgreSQL open as cleanup contexts, then
``open_services`` (``health_aggregator.bootstrap.bootstrap``; a test's fakes) makes the
service's objects from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from health_aggregator.api import routes
from health_aggregator.bootstrap import SERVICES, Services, bootstrap, workers
from health_aggregator.core.probes import ProbeSpec
from health_aggregator.pipeline.probes import load_specs
from health_aggregator.settings import HealthAggregatorSettings
from opsmesh.clock import Clock
from opsmesh.runtime import Runtime
from opsmesh.web import Bootstrap, ServiceSpec, init_app

SERVICE = "health-aggregator"

OpenServices = Callable[
    [Runtime, HealthAggregatorSettings, Sequence[ProbeSpec]], Awaitable[Services]
]


def build(
    settings: HealthAggregatorSettings,
    clock: Clock | None = None,
    open_services: OpenServices = bootstrap,
) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    # Read here, before anything opens: a probes file that does not load stops the start.
    probes = load_specs(settings.probes_file) if settings.probes_file is not None else []

    async def open_() -> Services:
        return await open_services(runtime, settings, probes)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("health_aggregator.migrations")],
            bootstrap=Bootstrap(SERVICES, open_, workers(runtime, settings, probes)),
            readiness=runtime.readiness,
            workers=runtime.with_self_report(lambda: ()),
            routes=routes(settings.history_limit),
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
