"""The composition root: the one place health-aggregator is wired together."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from health_aggregator.core.book import HealthBook
from health_aggregator.pipeline.health_stage import HealthStage
from health_aggregator.pipeline.http_api import HealthApi
from health_aggregator.pipeline.view import HealthView
from health_aggregator.settings import HealthAggregatorSettings
from health_aggregator.storage.checks import CheckStore
from health_aggregator.storage.retention import purge_jobs
from opsmesh.clock import Clock
from opsmesh.db.retention import days
from opsmesh.events.health import HealthReported
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_HEALTH_AGGREGATOR, HEALTH
from opsmesh.web.app import ServiceSpec, Worker, init_app

SERVICE = "health-aggregator"
log = get_logger(__name__)


def _version() -> str:
    try:
        return version("opsmesh-health-aggregator")
    except PackageNotFoundError:
        return "0"


def build(settings: HealthAggregatorSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    book = HealthBook()
    stores: list[CheckStore] = []

    def store() -> CheckStore:
        if not stores:
            stores.append(CheckStore(runtime.pool))
        return stores[0]

    view = HealthView(
        store,
        clock=runtime.clock,
        policies=settings.policies,
        default_policy=settings.default_policy,
        service_id=runtime.instance,
        version=_version(),
    )
    stages: list[HealthStage] = []

    def workers() -> list[tuple[str, Worker]]:
        probes: list[tuple[str, Worker]] = []
        share = None
        if settings.probes_file is not None:
            from health_aggregator.pipeline.probes import ProbeShare, probe_worker  # noqa: PLC0415

            share = ProbeShare()
            probes.append(("probes", probe_worker(settings, runtime, share)))
        stage = HealthStage(
            book=book,
            store=store(),
            producer=runtime.producer,
            clock=runtime.clock,
            registry=runtime.registry,
            ownership=share,
            max_future_s=settings.max_future_s,
            deregister_after_s=days(settings.deregister_after_days),
        )
        stages.append(stage)
        config = ConsumerConfig(group_id=GROUP_HEALTH_AGGREGATOR, topics=(HEALTH,))

        refresh = Periodic(
            "health_view_refresh",
            view.refresh,
            settings.view_refresh_s,
            periodic_metrics(runtime.registry),
            FirstRun.AT_START,
        )

        purger = runtime.purger(
            purge_jobs(
                runtime.pool,
                history_retention_days=settings.history_retention_days,
                deregister_after_days=settings.deregister_after_days,
            )
        )
        found: list[tuple[str, Worker]] = [
            ("health", runtime.consumer(config, HealthReported, stage)),
            ("view", refresh.run),
            ("retention", purger.run),
        ]
        return found + probes

    api = HealthApi(
        view=view,
        store=store,
        readiness=runtime.readiness,
        warmed=lambda: bool(stages) and stages[0].warmed,
        version=_version(),
        history_limit=settings.history_limit,
    )
    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("health_aggregator.migrations")],
            readiness=runtime.readiness,
            workers=runtime.with_self_report(workers),
            routes=api.routes,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
