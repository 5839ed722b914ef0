"""The composition root: the one place query-analyzer is wired together."""

from __future__ import annotations

from aiohttp import web

from opsmesh.clock import Clock
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_QUERY_ANALYZER, SLOW_QUERIES
from opsmesh.web.app import ServiceSpec, Worker, init_app
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.settings import QueryAnalyzerSettings
from query_analyzer.storage.stats import QueryStats

SERVICE = "query-analyzer"
_MAX_LIMIT = 500


def build(settings: QueryAnalyzerSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)

    def workers() -> list[tuple[str, Worker]]:
        stage = StatsStage(
            pool=runtime.pool,
            stats=QueryStats(runtime.pool),
            consumer=GROUP_QUERY_ANALYZER,
            registry=runtime.registry,
        )
        config = ConsumerConfig(group_id=GROUP_QUERY_ANALYZER, topics=(SLOW_QUERIES,))
        return [("stats", runtime.consumer(config, SlowQueryObserved, stage))]

    def routes(app: web.Application) -> None:
        async def top_queries(request: web.Request) -> web.Response:
            try:
                limit = int(request.query.get("limit", "20"))
            except ValueError:
                raise web.HTTPBadRequest(text="limit must be an integer") from None
            if not 1 <= limit <= _MAX_LIMIT:
                raise web.HTTPBadRequest(text=f"limit must be between 1 and {_MAX_LIMIT}")
            return web.json_response(await QueryStats(runtime.pool).top(limit))

        app.router.add_get("/api/v1/queries", top_queries)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[runtime.kafka_ctx, runtime.postgres_ctx("query_analyzer.migrations")],
            readiness=runtime.readiness,
            workers=workers,
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
