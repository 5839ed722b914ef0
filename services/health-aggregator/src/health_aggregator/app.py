"""The composition root: the one place health-aggregator is wired together."""

from __future__ import annotations

from aiohttp import web

from health_aggregator.core.book import HealthBook
from health_aggregator.pipeline.health_stage import HealthStage
from health_aggregator.settings import HealthAggregatorSettings
from health_aggregator.storage.checks import CheckStore
from opsmesh.clock import Clock
from opsmesh.events.health import HealthReported
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_HEALTH_AGGREGATOR, HEALTH
from opsmesh.web.app import ServiceSpec, Worker, init_app

SERVICE = "health-aggregator"


def build(settings: HealthAggregatorSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    book = HealthBook()

    def workers() -> list[tuple[str, Worker]]:
        stage = HealthStage(
            book=book,
            store=CheckStore(runtime.pool),
            producer=runtime.producer,
            clock=runtime.clock,
            registry=runtime.registry,
        )
        config = ConsumerConfig(group_id=GROUP_HEALTH_AGGREGATOR, topics=(HEALTH,))
        return [("health", runtime.consumer(config, HealthReported, stage))]

    def routes(app: web.Application) -> None:
        async def services(_: web.Request) -> web.Response:
            out = []
            for service in book.services():
                checks = [c for c in book.checks() if c.service == service]
                out.append(
                    {
                        "service": service,
                        "status": book.service_status(service).value,
                        "checks": [
                            {
                                "instance": c.instance,
                                "check": c.check,
                                "status": c.status.value,
                                "critical": c.critical,
                                "output": c.output,
                                "reported_at": c.reported_at,
                                "expires_at": c.expires_at,
                            }
                            for c in checks
                        ],
                    }
                )
            return web.json_response(out)

        app.router.add_get("/api/v1/services", services)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("health_aggregator.migrations")],
            readiness=runtime.readiness,
            workers=workers,
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
