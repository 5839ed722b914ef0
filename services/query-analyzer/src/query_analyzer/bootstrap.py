"""What query-analyzer is made of, and its workers.

``bootstrap`` runs once Kafka and PostgreSQL are open (``opsmesh.web.Bootstrap``): it
makes the statistics and findings stores once (the handlers and the stages share them),
the stats stage the slow-query consumer feeds, the profile stage (profiles per route and
the slow-route signal), and the periodic analysis (regressions,
EXPLAIN on the target database, index advice). ``workers`` are the consumer, the
analysis and the retention purge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from opsmesh.events.profiles import ProfileRecorded
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.runtime import Runtime
from opsmesh.topics import (
    GROUP_QUERY_ANALYZER,
    GROUP_QUERY_ANALYZER_PROFILES,
    PROFILES,
    SLOW_QUERIES,
)
from opsmesh.web import Worker
from query_analyzer.core.advice import AdviceRules
from query_analyzer.core.nplusone import NPlusOneRules
from query_analyzer.core.regression import RegressionRules
from query_analyzer.core.slow_routes import RouteWindows, SlowRouteRules
from query_analyzer.core.traces import TraceBuffer
from query_analyzer.pipeline.analysis import AnalysisConfig, Analyzer
from query_analyzer.pipeline.profile_stage import ProfileStage
from query_analyzer.pipeline.signals import KafkaSignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.settings import QueryAnalyzerSettings
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.profiles import ProfileStore
from query_analyzer.storage.retention import purge_jobs
from query_analyzer.storage.stats import QueryStats
from query_analyzer.target.explain import TargetDatabase


@dataclass(slots=True, kw_only=True)
class Services:
    stats: QueryStats  # per-fingerprint statistics per window
    findings: FindingStore  # findings, plans and index recommendations
    stage: StatsStage | None  # None: a read-only API (tests, tools)
    analyzer: Analyzer | None
    profiles: ProfileStore  # request profiles per route and function
    profile_stage: ProfileStage | None = None  # None: a read-only API


SERVICES = web.AppKey("query_analyzer.services", Services)


def analysis_config(settings: QueryAnalyzerSettings) -> AnalysisConfig:
    return AnalysisConfig(
        window_s=settings.window_s,
        slow_mean_ms=settings.slow_mean_ms,
        analyze=settings.explain_analyze,
        regression=RegressionRules(factor=settings.regression_factor),
        advice=AdviceRules(min_savings=settings.min_cost_savings),
    )


def target_of(settings: QueryAnalyzerSettings) -> TargetDatabase | None:
    if settings.target_dsn is None:
        return None
    return TargetDatabase(
        settings.target_dsn.get_secret_value(),
        statement_timeout_ms=settings.statement_timeout_ms,
        analyze_enabled=settings.explain_analyze,
    )


async def bootstrap(runtime: Runtime, settings: QueryAnalyzerSettings) -> Services:
    stats, findings = QueryStats(runtime.pool), FindingStore(runtime.pool)
    signals = KafkaSignalSink(runtime.producer)
    profiles = ProfileStore(runtime.pool)
    return Services(
        stats=stats,
        findings=findings,
        profiles=profiles,
        profile_stage=ProfileStage(
            pool=runtime.pool,
            profiles=profiles,
            consumer=GROUP_QUERY_ANALYZER_PROFILES,
            registry=runtime.registry,
            signals=signals,
            clock=runtime.clock,
            windows=RouteWindows(
                SlowRouteRules(window_s=settings.window_s, grace_s=settings.slow_route_grace_s)
            ),
        ),
        stage=StatsStage(
            pool=runtime.pool,
            stats=stats,
            findings=findings,
            signals=signals,
            consumer=GROUP_QUERY_ANALYZER,
            registry=runtime.registry,
            clock=runtime.clock,
            window_s=settings.window_s,
            n_plus_one=NPlusOneRules(
                min_repeats=settings.n_plus_one_min_repeats,
                min_total_ms=settings.n_plus_one_min_total_ms,
            ),
            traces=TraceBuffer(settings.trace_settle_s, settings.trace_buffer_spans),
        ),
        analyzer=Analyzer(
            pool=runtime.pool,
            signals=signals,
            clock=runtime.clock,
            config=analysis_config(settings),
            target=target_of(settings),
            target_database=settings.target_database,
        ),
    )


def workers(
    runtime: Runtime, settings: QueryAnalyzerSettings
) -> Callable[[Services], list[tuple[str, Worker]]]:
    def over(services: Services) -> list[tuple[str, Worker]]:
        found: list[tuple[str, Worker]] = []
        if services.stage is not None:
            config = ConsumerConfig(group_id=GROUP_QUERY_ANALYZER, topics=(SLOW_QUERIES,))
            found.append(("stats", runtime.consumer(config, SlowQueryObserved, services.stage)))
        if services.profile_stage is not None:
            config = ConsumerConfig(group_id=GROUP_QUERY_ANALYZER_PROFILES, topics=(PROFILES,))
            found.append(
                ("profiles", runtime.consumer(config, ProfileRecorded, services.profile_stage))
            )
        if services.analyzer is not None:
            # Analysis is advisory: a failing target must not stop the consumer.
            analysis = Periodic(
                "query_analysis",
                services.analyzer.run_once,
                settings.analysis_interval_s,
                periodic_metrics(runtime.registry),
                FirstRun.AFTER_INTERVAL,
            )
            found.append(("analysis", analysis.run))
        purger = runtime.purger(
            purge_jobs(
                runtime.pool,
                window_retention_days=settings.window_retention_days,
                retention_days=settings.retention_days,
            )
        )
        found.append(("retention", purger.run))
        return found

    return over
