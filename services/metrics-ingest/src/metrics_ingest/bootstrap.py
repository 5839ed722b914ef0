"""What metrics-ingest is made of, and its workers.

``build`` (``app.py``) makes the in-memory rollups, which the HTTP exposition reads and
the rollup stage fills. ``bootstrap`` runs once Kafka and PostgreSQL are open
(``opsmesh.web.Bootstrap``): it makes what the HTTP handlers use, the rollup history,
series admission and the rollup stage, and the partition maintenance. ``workers`` are the
metrics consumer and the maintenance loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from metrics_ingest.api.gate import HttpIngest
from metrics_ingest.pipeline.admission import PgSeriesAdmission
from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.pipeline.maintenance import PartitionMaintenance
from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.cardinality import SeriesLimits
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.retention import RetentionPolicy
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.settings import MetricsIngestSettings
from opsmesh.events.metrics import MetricSampledFields
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_METRICS_INGEST, METRICS
from opsmesh.web import Worker


@dataclass(slots=True, kw_only=True)
class Services:
    http: HttpIngest  # what the HTTP handlers use
    stage: RollupStage | None  # None: HTTP only (tests, the ingest benchmark)
    maintenance: PartitionMaintenance | None


SERVICES = web.AppKey("metrics_ingest.services", Services)


def rollups_of(settings: MetricsIngestSettings) -> Rollups:
    return Rollups(
        WindowConfig(
            sizes_s=settings.window_sizes_s,
            allowed_lateness_s=settings.allowed_lateness_s,
            idle_grace_s=settings.idle_grace_s,
            max_series_per_metric=settings.max_series_per_metric,
            max_series=settings.max_series,
            max_metric_names=settings.max_metric_names,
        )
    )


def ingest_limits(settings: MetricsIngestSettings) -> IngestLimits:
    return IngestLimits(
        max_samples=settings.max_samples_per_request,
        max_future_s=settings.max_future_s,
        max_age_s=settings.max_age_s,
    )


async def bootstrap(runtime: Runtime, settings: MetricsIngestSettings) -> Services:
    rollups = rollups_of(settings)
    limits = SeriesLimits(
        settings.max_series_per_metric, settings.max_series, settings.max_metric_names
    )
    history = RollupHistory(
        runtime.pool, RetentionPolicy(settings.retention_days, settings.partitions_ahead_days)
    )
    admission = PgSeriesAdmission(runtime.pool, limits) if limits else None
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return Services(
        http=HttpIngest(
            token=token or None,
            limits=ingest_limits(settings),
            window_sizes=settings.window_sizes_s,
            rollups=rollups,
            clock=runtime.clock,
            registry=runtime.registry,
            producer=runtime.producer,
            pool=runtime.pool,
            max_body_bytes=settings.max_body_bytes,
        ),
        stage=RollupStage(
            rollups=rollups,
            history=history,
            producer=runtime.producer,
            clock=runtime.clock,
            registry=runtime.registry,
            limits=limits,
            series_idle_s=settings.series_idle_s,
            admission=admission,
            max_future_s=settings.max_future_s,
        ),
        maintenance=PartitionMaintenance(
            history=history,
            admission=admission,
            clock=runtime.clock,
            metrics=runtime.retention_metrics,
            series_idle_s=settings.series_idle_s,
        ),
    )


def workers(
    runtime: Runtime, settings: MetricsIngestSettings
) -> Callable[[Services], list[tuple[str, Worker]]]:
    def over(services: Services) -> list[tuple[str, Worker]]:
        found: list[tuple[str, Worker]] = []
        if services.stage is not None:
            config = ConsumerConfig(group_id=GROUP_METRICS_INGEST, topics=(METRICS,))
            consumer = runtime.consumer(config, MetricSampledFields, services.stage)
            found.append(("rollups", consumer))
        if services.maintenance is not None:
            maintenance = Periodic(
                "rollup_partition_maintenance",
                services.maintenance.run_once,
                settings.maintenance_interval_s,
                periodic_metrics(runtime.registry),
                FirstRun.AT_START,
            )
            found.append(("partitions", maintenance.run))
        return found

    return over
