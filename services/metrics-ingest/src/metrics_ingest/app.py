"""The composition root: the one place metrics-ingest is wired together."""

from __future__ import annotations

from aiohttp import web

from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.settings import MetricsIngestSettings
from opsmesh.clock import Clock
from opsmesh.events.metrics import MetricSampled
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_METRICS_INGEST, METRICS
from opsmesh.web.app import ServiceSpec, Worker, init_app

SERVICE = "metrics-ingest"


def build(settings: MetricsIngestSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    rollups = Rollups(
        WindowConfig(
            sizes_s=settings.window_sizes_s,
            allowed_lateness_s=settings.allowed_lateness_s,
            idle_grace_s=settings.idle_grace_s,
        )
    )

    def workers() -> list[tuple[str, Worker]]:
        stage = RollupStage(
            rollups=rollups,
            history=RollupHistory(runtime.pool),
            producer=runtime.producer,
            clock=runtime.clock,
            registry=runtime.registry,
        )
        config = ConsumerConfig(group_id=GROUP_METRICS_INGEST, topics=(METRICS,))
        return [("rollups", runtime.consumer(config, MetricSampled, stage))]

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("metrics_ingest.migrations")],
            readiness=runtime.readiness,
            workers=workers,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
