"""The consumer handler: samples into windows; closed windows to history and signals.

Each batch returns the offsets still held by open windows and, per partition, the
watermark checkpoint to commit with the offset, so a restart resumes exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from metrics_ingest.pipeline.admission import SeriesAdmission
from metrics_ingest.pipeline.history import History
from metrics_ingest.pipeline.publisher import Publisher
from metrics_ingest.pipeline.signals import cardinality_signal, to_signal
from metrics_ingest.rollup.cardinality import SeriesKey, SeriesLimits, SeriesRefusal
from metrics_ingest.rollup.checkpoint import Checkpoint
from metrics_ingest.rollup.closed import ClosedWindow
from metrics_ingest.rollup.windows import Rollups, SampleOutcome
from opsmesh.clock import Clock
from opsmesh.events.metrics import MetricSampledFields, name_problem
from opsmesh.kafka.consumer import BatchResult, Partition, Received, Rejection
from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh.kafka.handler import ReadProgress
from opsmesh.logging import get_logger

log = get_logger(__name__)

# How often idle series are reaped and held ones touched in the group-wide admission;
# series untouched for several intervals belong to no live replica.
TOUCH_INTERVAL_S = 60.0


class RollupStage:
    def __init__(
        self,
        *,
        rollups: Rollups,
        history: History,
        producer: Publisher,
        clock: Clock,
        registry: CollectorRegistry,
        max_series_per_metric: int = 0,
        limits: SeriesLimits | None = None,
        series_idle_s: float = 3600.0,
        admission: SeriesAdmission | None = None,
        max_future_s: float = math.inf,
    ) -> None:
        self._rollups = rollups
        self._admission = admission
        self._history = history
        self._producer = producer
        self._clock = clock
        self._limits = limits or SeriesLimits(per_metric=max_series_per_metric)
        self._limit = self._limits.per_metric
        self._warned_at: dict[SeriesRefusal, float] = {}  # global refusals, logged per reap
        self._named: set[str] = set()  # metric names with a series gauge
        self._series_idle_s = series_idle_s
        self._max_future_s = max_future_s
        self._next_reap = clock.now() + TOUCH_INTERVAL_S
        # Windows closed but not yet durable; kept across a failed attempt so none is lost.
        self._unsaved: list[ClosedWindow] = []
        self._progress: ReadProgress | None = None  # the consumer's, once it is built
        self._samples = Counter(
            "metrics_ingest_samples", "Samples by outcome", ["outcome"], registry=registry
        )
        self._outcome_counters = {o: self._samples.labels(o.value) for o in SampleOutcome}
        self._closed = Counter("metrics_ingest_windows_closed", "Windows closed", registry=registry)
        self._expired = Counter(
            "metrics_ingest_windows_past_retention",
            "Closed windows not written because their day is past retention",
            registry=registry,
        )
        self._open = Gauge("metrics_ingest_windows_open", "Windows open", registry=registry)
        self._rejected_series = Counter(
            "metrics_ingest_series_rejected",
            "Samples of new series rejected by the per-metric series limit",
            ["name"],
            registry=registry,
        )
        self._series = Gauge(
            "metrics_ingest_series", "Known series per metric name", ["name"], registry=registry
        )
        self._series_active = Gauge(
            "metrics_ingest_series_active",
            "Series this replica holds (every metric name)",
            registry=registry,
        )
        refused = Counter(
            "metrics_ingest_series_refused",
            "Samples of new series refused by a series limit, by the limit",
            ["reason"],
            registry=registry,
        )
        self._refused = {reason: refused.labels(reason.value) for reason in SeriesRefusal}
        self._out_of_range = Counter(
            "metrics_ingest_stats_out_of_range",
            "Window stats beyond float64's range (saturated to +-1.797e308) or not a number"
            " (dropped), by stat",
            ["stat", "action"],
            registry=registry,
        )
        self._out_of_range_logged_at = -TOUCH_INTERVAL_S

    async def handle(self, batch: Sequence[Received[MetricSampledFields]]) -> BatchResult:
        invalid = self._add(batch)
        now = self._clock.now()
        if self._admission is not None:
            await self._admit(self._admission, now)
        lagging = self._progress.lagging() if self._progress is not None else frozenset()
        self._unsaved.extend(self._rollups.close_due(now, lagging))
        rejected = self._rollups.take_rejected_series()
        refusals = self._rollups.take_series_refusals()
        await self._emit(rejected, refusals, now)
        self._open.set(self._rollups.open_windows)
        reaped = now >= self._next_reap
        if reaped:
            await self._reap(now)
        if rejected or refusals or reaped:
            self._count_series()
        self._series_active.set(self._rollups.series_total)
        return BatchResult(
            rejected=invalid,
            hold_from=self._rollups.hold_from(),
            commit_metadata={p: c.encode() for p, c in self._rollups.checkpoints().items()},
        )

    def _add(self, batch: Sequence[Received[MetricSampledFields]]) -> list[Rejection]:
        """Every sample into its windows; returns the records to dead-letter."""
        add = self._rollups.add
        accepted = SampleOutcome.ACCEPTED
        others: dict[SampleOutcome, int] = {}  # every outcome but the common one
        invalid: list[Rejection] = []
        partition: Partition = ("", -1)
        horizon = self._clock.now() + self._max_future_s
        future = SampleOutcome.TOO_FAR_IN_FUTURE
        for record in batch:
            message = record.message
            if message.partition != partition[1] or message.topic != partition[0]:
                partition = (message.topic, message.partition)
            if record.event.sampled_at > horizon:
                others[future] = others.get(future, 0) + 1
                invalid.append(
                    Rejection(
                        record.raw,
                        DeadLetterReason.SCHEMA_VIOLATION,
                        f"sampled_at {record.event.sampled_at} is more than "
                        f"{self._max_future_s}s ahead of this consumer's clock",
                    )
                )
                continue
            outcome = add(record.event, partition, message.offset, message.key, message.headers)
            if outcome is accepted:
                continue
            others[outcome] = others.get(outcome, 0) + 1
            if outcome is SampleOutcome.INVALID_NAME:
                event = record.event
                problem = name_problem(event.name, event.labels) or "invalid name"
                invalid.append(Rejection(record.raw, DeadLetterReason.SCHEMA_VIOLATION, problem))
        if len(batch) > sum(others.values()):
            self._outcome_counters[accepted].inc(len(batch) - sum(others.values()))
        for outcome, n in others.items():
            self._outcome_counters[outcome].inc(n)
        return invalid

    async def _admit(self, admission: SeriesAdmission, now: float) -> None:
        """New series confirmed group-wide before any window closes, so one the limit
        refuses leaves no trace (a failure here retries the batch; they stay unconfirmed)."""
        new = self._rollups.unconfirmed_series()
        if new:
            by_reason: dict[SeriesRefusal, list[SeriesKey]] = {}
            for key, reason in await admission.admit(new, now):
                by_reason.setdefault(reason, []).append(key)
            for reason, keys in by_reason.items():
                self._rollups.refuse_series(keys, reason)
            self._rollups.confirm_series(new)

    def _count_series(self) -> None:
        counts = self._rollups.series_count()
        for name, n in counts.items():
            self._series.labels(name).set(n)
        for name in self._named - counts.keys():
            self._series.remove(name)  # a name this replica no longer holds
        self._named = set(counts)

    async def _emit(
        self, rejected: dict[str, int], refusals: dict[SeriesRefusal, int], now: float
    ) -> None:
        """Closed windows to history, then signals (with one per over-limit metric, and
        one per global limit that refused series)."""
        if not self._unsaved and not rejected and not refusals:
            return
        outgoing = [cardinality_signal(name, n, self._limit, now) for name, n in rejected.items()]
        for name, n in rejected.items():
            self._rejected_series.labels(name).inc(n)
            log.warning("series limit reached", metric=name, rejected=n, limit=self._limit)
        for reason, n in refusals.items():
            self._refused[reason].inc(n)
            if reason is SeriesRefusal.PER_METRIC:
                continue
            limit = (
                self._limits.series if reason is SeriesRefusal.SERIES else self._limits.metric_names
            )
            outgoing.append(cardinality_signal("*", n, limit, now, limit_name=reason.value))
            if now - self._warned_at.get(reason, -TOUCH_INTERVAL_S) >= TOUCH_INTERVAL_S:
                self._warned_at[reason] = now  # a flood of new names logs once a minute
                log.warning("global series limit reached", limit=reason.value, max=limit)
        if self._unsaved:
            self._count_out_of_range(self._unsaved, now)
            skipped = await self._history.store(self._unsaved, now)
            if skipped:
                self._expired.inc(skipped)
            outgoing.extend(to_signal(w, now) for w in self._unsaved)
        await self._producer.publish_batched(outgoing)
        self._closed.inc(len(self._unsaved))
        self._unsaved = []

    def _count_out_of_range(self, windows: Sequence[ClosedWindow], now: float) -> None:
        flagged = [(w, stat, action) for w in windows for stat, action in w.out_of_range]
        if not flagged:
            return
        for _, stat, action in flagged:
            self._out_of_range.labels(stat, action.value).inc()
        if now - self._out_of_range_logged_at >= TOUCH_INTERVAL_S:
            self._out_of_range_logged_at = now  # a stream of huge values logs once a minute
            window, stat, action = flagged[0]
            log.warning(
                "window stat out of float64's range",
                series=window.series,
                stat=stat,
                action=action.value,
                windows=len({id(w) for w, _, _ in flagged}),
            )

    async def _reap(self, now: float) -> None:
        gone = self._rollups.reap_idle(before=now - self._series_idle_s)
        if self._admission is not None:
            await self._admission.release(gone)
            await self._admission.touch(self._rollups.held_series(), now)
        self._next_reap = now + TOUCH_INTERVAL_S

    def watch_progress(self, progress: ReadProgress) -> None:
        self._progress = progress

    async def on_committed_metadata(self, metadata: dict[Partition, str]) -> None:
        for partition, text in metadata.items():
            checkpoint = Checkpoint.decode(text)
            if checkpoint is not None:
                self._rollups.resume(partition, checkpoint)
                log.info(
                    "partition resumes from its checkpoint",
                    partition=partition[1],
                    watermark=checkpoint.watermark,
                    applied_to=checkpoint.applied_to,
                )

    async def on_assigned(self, partitions: set[Partition]) -> None:
        return None

    async def on_revoked(self, partitions: set[Partition]) -> None:
        self._rollups.forget(partitions)
