"""The profile consumer: fold a batch of ``ProfileRecorded`` per route and function and
merge it in one transaction with the batch's offsets (a replayed batch is not counted
twice); then add the batch's profiles to the routes' duration windows and publish a
``route_profiled_duration`` signal for each window that closed (checked on every call,
empty batches too, so a window closes while its route is quiet).

Like the stats stage's, signals go out after the commit (at most once): windows are held
in memory, and a crash loses the open ones rather than counting a replayed batch twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter
from psycopg_pool import AsyncConnectionPool

from opsmesh.clock import Clock
from opsmesh.db.offsets import mark_applied, unapplied
from opsmesh.events.profiles import ProfileRecorded
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler
from query_analyzer.core.profiles import fold
from query_analyzer.core.slow_routes import RouteWindows, slow_route_signal
from query_analyzer.pipeline.signals import SignalSink
from query_analyzer.storage.profiles import ProfileStore


class ProfileStage(StatelessHandler):
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        profiles: ProfileStore,
        consumer: str,
        registry: CollectorRegistry,
        signals: SignalSink,
        clock: Clock,
        windows: RouteWindows | None = None,
    ) -> None:
        self._pool = pool
        self._profiles = profiles
        self._consumer = consumer
        self._signals = signals
        self._clock = clock
        # Not `windows or ...`: no open window has len 0, and its rules must stand.
        self._windows = windows if windows is not None else RouteWindows()
        self._received = Counter(
            "query_analyzer_profiles",
            "Request profiles merged, by why they were taken (slow or sampled)",
            ["reason"],
            registry=registry,
        )
        self._left_out = Counter(
            "query_analyzer_profiles_left_out_of_signals",
            "Profiles merged but left out of the slow-route windows: late (their window"
            " had closed) or dropped (too many windows open)",
            ["why"],
            registry=registry,
        )
        self._late, self._dropped = 0, 0

    async def handle(self, batch: Sequence[Received[ProfileRecorded]]) -> BatchResult:
        now = self._clock.now()
        if batch:
            await self._apply(batch, now)
        closed = self._windows.closed(now)
        if closed:
            try:
                await self._signals.publish([slow_route_signal(w, observed_at=now) for w in closed])
            except Exception:
                self._windows.restore(closed)  # published on the next call
                raise
        return BatchResult()

    async def _apply(self, batch: Sequence[Received[ProfileRecorded]], now: float) -> None:
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            fresh = await unapplied(cur, self._consumer, batch)
            events = [r.event for r in fresh]
            routes, functions = fold(events)
            await self._profiles.merge(cur, routes, functions)
            await mark_applied(cur, self._consumer, batch)
        # Only once committed: a retried batch must not be counted in twice.
        windows = self._windows
        for event in events:
            self._received.labels(event.reason).inc()
            windows.add(event, now)
        if windows.late > self._late:
            self._left_out.labels("late").inc(windows.late - self._late)
            self._late = windows.late
        if windows.dropped > self._dropped:
            self._left_out.labels("dropped").inc(windows.dropped - self._dropped)
            self._dropped = windows.dropped
