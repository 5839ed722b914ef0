"""The composition root: the one place query-analyzer is wired together."""

from __future__ import annotations

from aiohttp import web

from opsmesh.clock import Clock
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_QUERY_ANALYZER, SLOW_QUERIES
from opsmesh.web.app import ServiceSpec, Worker, init_app
from query_analyzer import api
from query_analyzer.analysis import AnalysisConfig, Analyzer
from query_analyzer.core.advice import AdviceRules
from query_analyzer.core.nplusone import NPlusOneRules
from query_analyzer.core.regression import RegressionRules
from query_analyzer.core.traces import TraceBuffer
from query_analyzer.pipeline.signals import KafkaSignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.settings import QueryAnalyzerSettings
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.retention import purge_jobs
from query_analyzer.storage.stats import QueryStats
from query_analyzer.target.explain import TargetDatabase

SERVICE = "query-analyzer"
log = get_logger(__name__)


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


def build(settings: QueryAnalyzerSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)

    def workers() -> list[tuple[str, Worker]]:
        signals = KafkaSignalSink(runtime.producer)
        stage = StatsStage(
            pool=runtime.pool,
            stats=QueryStats(runtime.pool),
            findings=FindingStore(runtime.pool),
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
        )
        analyzer = Analyzer(
            pool=runtime.pool,
            signals=signals,
            clock=runtime.clock,
            config=analysis_config(settings),
            target=target_of(settings),
            target_database=settings.target_database,
        )

        # Analysis is advisory: a failing target must not stop the consumer.
        analysis = Periodic(
            "query_analysis",
            analyzer.run_once,
            settings.analysis_interval_s,
            periodic_metrics(runtime.registry),
            FirstRun.AFTER_INTERVAL,
        )

        config = ConsumerConfig(group_id=GROUP_QUERY_ANALYZER, topics=(SLOW_QUERIES,))
        purger = runtime.purger(
            purge_jobs(
                runtime.pool,
                window_retention_days=settings.window_retention_days,
                retention_days=settings.retention_days,
            )
        )
        return [
            ("stats", runtime.consumer(config, SlowQueryObserved, stage)),
            ("analysis", analysis.run),
            ("retention", purger.run),
        ]

    def routes(app: web.Application) -> None:
        # The pool opens with the app, after the routes are added: read it per request.
        api.routes(app, lambda: runtime.pool)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("query_analyzer.migrations")],
            readiness=runtime.readiness,
            workers=runtime.with_self_report(workers),
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
