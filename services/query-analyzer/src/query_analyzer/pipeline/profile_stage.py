"""The profile consumer: fold a batch of ``ProfileRecorded`` per route and function and
merge it in one transaction with the batch's offsets (a replayed batch is not counted
twice)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter
from psycopg_pool import AsyncConnectionPool

from opsmesh.db.offsets import mark_applied, unapplied
from opsmesh.events.profiles import ProfileRecorded
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler
from query_analyzer.core.profiles import fold
from query_analyzer.storage.profiles import ProfileStore


class ProfileStage(StatelessHandler):
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        profiles: ProfileStore,
        consumer: str,
        registry: CollectorRegistry,
    ) -> None:
        self._pool = pool
        self._profiles = profiles
        self._consumer = consumer
        self._received = Counter(
            "query_analyzer_profiles",
            "Request profiles merged, by why they were taken (slow or sampled)",
            ["reason"],
            registry=registry,
        )

    async def handle(self, batch: Sequence[Received[ProfileRecorded]]) -> BatchResult:
        if not batch:
            return BatchResult()
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            fresh = await unapplied(cur, self._consumer, batch)
            events = [r.event for r in fresh]
            routes, functions = fold(events)
            await self._profiles.merge(cur, routes, functions)
            await mark_applied(cur, self._consumer, batch)
        for event in events:
            self._received.labels(event.reason).inc()
        return BatchResult()
