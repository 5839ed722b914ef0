"""The slow-query consumer: fingerprint, aggregate per batch and window, read plans
carried by events; merge everything in one transaction with the offsets, then publish
the batch's signals. Traced queries go to the trace buffer once committed, and traces that
went quiet are read for N+1 runs on every call (empty batches too). An N+1 signal
continues the trace of the newest record of its request (``TraceBuffer``); the periodic
analysis's signals (regressions, index advice) have no one record behind them and start
their own.

Signals go out after the commit: a crash in between loses them (at most once) rather
than repeating them on replay; a finding's row is already stored either way. Traces still
in the buffer at a crash are not read (a missed N+1 at worst, never a false one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from psycopg_pool import AsyncConnectionPool

from opsmesh.clock import Clock
from opsmesh.db.offsets import mark_applied, unapplied
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler
from opsmesh.tracing.context import FanIn, TraceContext
from query_analyzer.core.aggregate import QueryAggregate
from query_analyzer.core.cache import FingerprintCache
from query_analyzer.core.findings import FindingKind, n_plus_one_id, n_plus_one_signal
from query_analyzer.core.findings import plan_problem_id as _plan_problem_id
from query_analyzer.core.fingerprint import FingerprintKind
from query_analyzer.core.nplusone import NPlusOneRules, QuerySpan, detect
from query_analyzer.core.plans import read_plan
from query_analyzer.core.traces import Context, SettledTrace, TraceBuffer
from query_analyzer.pipeline.signals import SignalSink
from query_analyzer.storage.findings import Finding, FindingStore
from query_analyzer.storage.stats import QueryStats

_MAX_PLANS_PER_BATCH = 20

AggregateKey = tuple[str, str, str, float]


class StatsStage(StatelessHandler):
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        stats: QueryStats,
        findings: FindingStore,
        signals: SignalSink,
        consumer: str,
        registry: CollectorRegistry,
        clock: Clock,
        window_s: int = 60,
        n_plus_one: NPlusOneRules | None = None,
        traces: TraceBuffer | None = None,
    ) -> None:
        self._pool = pool
        self._stats = stats
        self._findings = findings
        self._signals = signals
        self._consumer = consumer
        self._clock = clock
        self._window_s = window_s
        self._rules = n_plus_one or NPlusOneRules()
        # Not `traces or ...`: an empty buffer has len 0, and its settings must stand.
        self._traces = traces if traces is not None else TraceBuffer()
        self._cache = FingerprintCache()
        self._queries = Counter(
            "query_analyzer_queries",
            "Slow queries by fingerprint kind",
            ["kind"],
            registry=registry,
        )
        self._found = Counter(
            "query_analyzer_findings", "Findings by kind", ["kind"], registry=registry
        )

    async def handle(self, batch: Sequence[Received[SlowQueryObserved]]) -> BatchResult:
        now = self._clock.now()
        if batch:
            await self._apply(batch, now)
        settled = self._traces.settled(now)
        if settled:
            try:
                await self._read_traces(settled, now)
            except Exception:
                self._traces.restore(settled)  # read again on the next call
                raise
        return BatchResult()

    async def _apply(self, batch: Sequence[Received[SlowQueryObserved]], now: float) -> None:
        spans: list[tuple[QuerySpan, Context, TraceContext | None]] = []
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            fresh = await unapplied(cur, self._consumer, batch)
            aggregates: dict[AggregateKey, QueryAggregate] = {}
            with_plans: list[tuple[str, SlowQueryObserved]] = []
            regex_kind = 0
            window_s = self._window_s
            get = self._cache.get
            regex = FingerprintKind.REGEX
            add_span = spans.append
            for record in fresh:
                event = record.event
                sql = event.sql
                fp = get(sql)
                if fp.kind is regex:
                    regex_kind += 1
                started = event.started_at
                key = (fp.value, event.database, fp.version, started - started % window_s)
                aggregate = aggregates.get(key)
                if aggregate is None:
                    aggregate = aggregates[key] = QueryAggregate(fp, event.database, key[3])
                aggregate.add(event.duration_ms, event.rows, started, sql)
                if event.parent_span_id and (trace := event.trace_id or event.request_id):
                    span = QuerySpan(
                        trace_id=trace,
                        span_id=event.span_id,
                        parent_span_id=event.parent_span_id,
                        fingerprint=fp.value,
                        display=fp.display,
                        duration_ms=event.duration_ms,
                        started_at=started,
                        # Sentry skips truncated SQL ("..." at the end); SQL that
                        # does not parse is most often truncated too.
                        truncated=fp.kind is regex or "..." in sql[-8:],
                    )
                    add_span((span, (event.database, event.application), record.trace))
                if event.plan is not None and len(with_plans) < _MAX_PLANS_PER_BATCH:
                    with_plans.append((fp.value, event))
            await self._stats.merge(cur, list(aggregates.values()))
            findings = await self._read_plans(cur, with_plans, now)
            await self._findings.add(cur, findings)
            await mark_applied(cur, self._consumer, batch)
        # Only once committed: a retried batch must not put its spans in twice.
        for span, context, origin in spans:
            self._traces.add(span, context, now, origin)
        parsed = len(fresh) - regex_kind
        if parsed:
            self._queries.labels(FingerprintKind.PARSED.value).inc(parsed)
        if regex_kind:
            self._queries.labels(FingerprintKind.REGEX.value).inc(regex_kind)
        for finding in findings:
            self._found.labels(finding.kind).inc()

    async def _read_traces(self, settled: Sequence[SettledTrace], now: float) -> None:
        """N+1 runs of the traces that went quiet: findings, then their signals."""
        findings: list[Finding] = []
        signals: list[SignalObserved] = []
        traces: list[FanIn | None] = []
        min_spans = self._rules.min_repeats + 1  # a source and its repeats
        for trace in settled:
            if len(trace.spans) < min_spans:
                continue
            database, application = trace.context
            for found in detect(trace.spans, self._rules):
                findings.append(
                    Finding(
                        id=n_plus_one_id(database, found),
                        kind=FindingKind.N_PLUS_ONE,
                        fingerprint=found.repeated_fingerprint,
                        database=database,
                        application=application,
                        title=f"N+1: {found.repeated_display[:200]}",
                        evidence={**asdict(found), "key": found.key},
                        seen_at=now,
                    )
                )
                signals.append(
                    n_plus_one_signal(
                        found, database=database, application=application, observed_at=now
                    )
                )
                traces.append(trace.origin)
        if not findings:
            return
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await self._findings.add(cur, findings)
        for finding in findings:
            self._found.labels(finding.kind).inc()
        await self._signals.publish(signals, traces)

    async def _read_plans(
        self, cur: Any, with_plans: list[tuple[str, SlowQueryObserved]], now: float
    ) -> list[Finding]:
        findings: list[Finding] = []
        for fingerprint, event in with_plans:
            try:
                problems = read_plan(event.plan)
            except ValueError:
                continue  # a plan we cannot read is not worth dead-lettering the query for
            await self._findings.save_plan(
                cur,
                fingerprint=fingerprint,
                database=event.database,
                source="event",
                plan=event.plan,
                problems=[asdict(p) for p in problems],
                at=now,
            )
            findings.extend(
                Finding(
                    id=_plan_problem_id(event.database, fingerprint, p),
                    kind=FindingKind.PLAN_PROBLEM,
                    fingerprint=fingerprint,
                    database=event.database,
                    application=event.application,
                    title=p.detail[:300],
                    evidence={**asdict(p), "source": "event"},
                    seen_at=now,
                )
                for p in problems
            )
        return findings
