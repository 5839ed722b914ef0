"""The composition root: the one place metrics-ingest is wired together."""

from __future__ import annotations

from aiohttp import web

from metrics_ingest.pipeline.admission import PgSeriesAdmission
from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.pipeline.http_api import HttpApi
from metrics_ingest.pipeline.rollup_stage import TOUCH_INTERVAL_S, RollupStage
from metrics_ingest.rollup.cardinality import SeriesLimits
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.retention import RetentionPolicy
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.settings import MetricsIngestSettings
from opsmesh.clock import Clock
from opsmesh.events.metrics import MetricSampledFields
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_METRICS_INGEST, METRICS
from opsmesh.web.app import ServiceSpec, Worker, init_app

SERVICE = "metrics-ingest"
log = get_logger(__name__)


def build(settings: MetricsIngestSettings, clock: Clock | None = None) -> web.Application:
    # Every series key is published (its windows' signals, HTTP samples): remember the
    # partitions of up to a million keys.
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock, partition_cache=1_000_000)
    rollups = Rollups(
        WindowConfig(
            sizes_s=settings.window_sizes_s,
            allowed_lateness_s=settings.allowed_lateness_s,
            idle_grace_s=settings.idle_grace_s,
            max_series_per_metric=settings.max_series_per_metric,
            max_series=settings.max_series,
            max_metric_names=settings.max_metric_names,
        )
    )
    limits = SeriesLimits(
        settings.max_series_per_metric, settings.max_series, settings.max_metric_names
    )
    policy = RetentionPolicy(settings.retention_days, settings.partitions_ahead_days)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    api = HttpApi(
        token=token or None,
        limits=IngestLimits(
            max_samples=settings.max_samples_per_request,
            max_future_s=settings.max_future_s,
            max_age_s=settings.max_age_s,
        ),
        window_sizes=settings.window_sizes_s,
        rollups=rollups,
        clock=runtime.clock,
        registry=runtime.registry,
        producer=lambda: runtime.producer,
        pool=lambda: runtime.pool,
        max_body_bytes=settings.max_body_bytes,
    )

    def workers() -> list[tuple[str, Worker]]:
        history = RollupHistory(runtime.pool, policy)
        admission = PgSeriesAdmission(runtime.pool, limits) if limits else None
        stage = RollupStage(
            rollups=rollups,
            history=history,
            producer=runtime.producer,
            clock=runtime.clock,
            registry=runtime.registry,
            limits=limits,
            series_idle_s=settings.series_idle_s,
            admission=admission,
            max_future_s=settings.max_future_s,
        )
        config = ConsumerConfig(group_id=GROUP_METRICS_INGEST, topics=(METRICS,))
        retention = runtime.retention_metrics
        retention.dropped_partitions.labels("metrics_ingest.rollups")
        retention.purged.labels("metrics_ingest.series_admitted")

        async def maintain() -> None:
            """The purge job: partitions ahead, expired days dropped, admitted series that
            no replica holds forgotten."""
            now = runtime.clock.now()
            done = await history.maintain(now)
            retention.dropped_partitions.labels("metrics_ingest.rollups").inc(len(done.drop))
            if admission is not None:
                # Touched every TOUCH_INTERVAL_S by their owner while held.
                forgotten = await admission.purge(
                    now - max(settings.series_idle_s, 5 * TOUCH_INTERVAL_S)
                )
                retention.purged.labels("metrics_ingest.series_admitted").inc(forgotten)
            if done.create or done.drop:
                log.info(
                    "rollup partitions maintained",
                    created=[str(d) for d in done.create],
                    dropped=[str(d) for d in done.drop],
                )

        maintenance = Periodic(
            "rollup_partition_maintenance",
            maintain,
            settings.maintenance_interval_s,
            periodic_metrics(runtime.registry),
            FirstRun.AT_START,
        )

        return [
            ("rollups", runtime.consumer(config, MetricSampledFields, stage)),
            ("partitions", maintenance.run),
        ]

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("metrics_ingest.migrations")],
            readiness=runtime.readiness,
            workers=runtime.with_self_report(workers),
            routes=api.routes,
            drain_timeout_s=settings.shutdown_timeout_s,
            client_max_size=settings.max_body_bytes,
            auto_decompress=False,  # HttpApi decompresses, bounded (rollup/decompress.py)
        )
    )
