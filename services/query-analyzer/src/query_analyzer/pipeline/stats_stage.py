"""The slow-query consumer: fingerprint, aggregate per batch, merge into statistics once."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter
from psycopg_pool import AsyncConnectionPool

from opsmesh.db.offsets import mark_applied, unapplied
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler
from query_analyzer.core.aggregate import QueryAggregate
from query_analyzer.core.fingerprint import fingerprint
from query_analyzer.storage.stats import QueryStats


class StatsStage(StatelessHandler):
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        stats: QueryStats,
        consumer: str,
        registry: CollectorRegistry,
    ) -> None:
        self._pool = pool
        self._stats = stats
        self._consumer = consumer
        self._queries = Counter(
            "query_analyzer_queries",
            "Slow queries by fingerprint kind",
            ["kind"],
            registry=registry,
        )

    async def handle(self, batch: Sequence[Received[SlowQueryObserved]]) -> BatchResult:
        if not batch:
            return BatchResult()
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            fresh = await unapplied(cur, self._consumer, batch)
            aggregates: dict[tuple[str, str, str], QueryAggregate] = {}
            for record in fresh:
                fp = fingerprint(record.event.sql)
                key = (fp.value, record.event.database, fp.version)
                aggregate = aggregates.get(key)
                if aggregate is None:
                    aggregate = aggregates[key] = QueryAggregate(fp, record.event.database)
                aggregate.add(record.event)
                self._queries.labels(fp.kind.value).inc()
            await self._stats.merge(cur, list(aggregates.values()))
            await mark_applied(cur, self._consumer, batch)
        return BatchResult()
