"""What health-aggregator is made of, and its workers.

``build`` (``app.py``) reads the probes file before anything opens, so a file that does
not load stops the start with the reason. ``bootstrap`` runs once Kafka and PostgreSQL
are open (``opsmesh.web.Bootstrap``): it makes the check store, the fleet view, the health
stage over the checks this replica owns and, with probes, their share of the partitions.
``workers`` are the health consumer, the view refresh, the retention purge and the probes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from health_aggregator.core.checks import OwnedChecks
from health_aggregator.core.probes import ProbeSpec
from health_aggregator.pipeline.health_stage import HealthStage
from health_aggregator.pipeline.probes import ProbeShare, probe_worker
from health_aggregator.pipeline.view import HealthView
from health_aggregator.settings import HealthAggregatorSettings
from health_aggregator.storage.checks import CheckStore
from health_aggregator.storage.retention import purge_jobs
from opsmesh.db.retention import days
from opsmesh.events.health import HealthReported
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_HEALTH_AGGREGATOR, HEALTH
from opsmesh.web import Worker
from opsmesh.web.app import ReadinessCheck


def package_version() -> str:
    try:
        return version("opsmesh-health-aggregator")
    except PackageNotFoundError:
        return "0"


@dataclass(slots=True, kw_only=True)
class Services:
    store: CheckStore
    view: HealthView  # the fleet, refreshed from the table all replicas write
    stage: HealthStage  # the checks this replica owns: reports in, changes signalled
    probes: ProbeShare | None  # None: no probes file
    readiness: Callable[[], Sequence[ReadinessCheck]]  # the resources this process needs
    version: str
    history_limit: int  # status changes per service in its detail


SERVICES = web.AppKey("health_aggregator.services", Services)


async def bootstrap(
    runtime: Runtime, settings: HealthAggregatorSettings, probes: Sequence[ProbeSpec]
) -> Services:
    store = CheckStore(runtime.pool)
    share = ProbeShare() if probes else None
    running = package_version()
    return Services(
        store=store,
        view=HealthView(
            store,
            clock=runtime.clock,
            policies=settings.policies,
            default_policy=settings.default_policy,
            service_id=runtime.instance,
            version=running,
        ),
        stage=HealthStage(
            owned=OwnedChecks(),
            store=store,
            producer=runtime.producer,
            clock=runtime.clock,
            registry=runtime.registry,
            ownership=share,
            max_future_s=settings.max_future_s,
            deregister_after_s=days(settings.deregister_after_days),
        ),
        probes=share,
        readiness=runtime.readiness,
        version=running,
        history_limit=settings.history_limit,
    )


def workers(
    runtime: Runtime, settings: HealthAggregatorSettings, probes: Sequence[ProbeSpec]
) -> Callable[[Services], list[tuple[str, Worker]]]:
    def over(services: Services) -> list[tuple[str, Worker]]:
        config = ConsumerConfig(group_id=GROUP_HEALTH_AGGREGATOR, topics=(HEALTH,))
        refresh = Periodic(
            "health_view_refresh",
            services.view.refresh,
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
            ("health", runtime.consumer(config, HealthReported, services.stage)),
            ("view", refresh.run),
            ("retention", purger.run),
        ]
        if services.probes is not None:
            found.append(("probes", probe_worker(probes, settings, runtime, services.probes)))
        return found

    return over
