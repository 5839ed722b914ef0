"""Tumbling windows per series with a per-partition event-time watermark.

Each Kafka partition has its own watermark: the newest sample time seen in it minus the
allowed lateness. A window ``[start, end)`` closes when its partition's watermark passes
its end; a sample for a window already behind the watermark is late, counted and dropped.
When a partition goes quiet (no sample arrived for ``idle_grace_s`` of processing time,
and the consumer has read it to its end), wall-clock time minus lateness and grace moves
its watermark on, so quiet series still close. A partition that is replaying old samples
keeps receiving them, and one whose samples wait on the broker (the handler stalled on
PostgreSQL, a backlog after it) is not read to its end, so neither is idle and neither
has its samples mistaken for late data.

Each open window remembers the lowest offset that contributed to it, so the consumer
commits only up to samples whose windows are durable.

A ``Checkpoint`` (the partition's watermark and the offset processed up to) is committed
with each offset. After a restart the partition resumes from it: a replayed sample whose
window was already behind the watermark at that commit belongs to a window that was
closed and emitted in full, so it is skipped (``REPLAYED``) instead of re-forming that
window from a partial replay.

Histograms fold into per-bucket increases (``rollup.histogram``).

A window remembers the ``traceparent`` of the record whose sample opened it (``origin``,
read from the record's headers only then, not per sample): its signal continues that
trace. One parent and no links, on purpose: a window folds thousands of samples, and
reading every record's context would cost the hot path more than the rollup itself.

``add`` is the hot path (every sample): it avoids calls and allocations where it can; a
sample of a series whose key, name and labels were seen before touches only dictionaries
and the open windows' fields.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from metrics_ingest.rollup.cardinality import SeriesKey, SeriesLimit, SeriesLimits, SeriesRefusal
from metrics_ingest.rollup.checkpoint import Checkpoint
from metrics_ingest.rollup.closed import ClosedWindow, OutOfRange, bounded
from metrics_ingest.rollup.histogram import BucketIncrease, fold_sample
from opsmesh.catalogue import RollupStat
from opsmesh.events.metrics import MetricKind, MetricSampledFields, name_problem
from opsmesh.labels import series_id
from opsmesh.tracing.context import traceparent_of

Partition = tuple[str, int]


class SampleOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    LATE = "late"
    DUPLICATE = "duplicate"  # offset already applied (a retried batch)
    REPLAYED = "replayed"  # replay after a restart; its window was already emitted in full
    OVER_CARDINALITY = "over_cardinality"  # a new series beyond a series limit
    INVALID_NAME = "invalid_name"  # a new series whose metric or label name is not valid
    # Stamped further ahead than the consumer's max_future_s (checked before ``add``): its
    # window would never close and it would move the partition's watermark past every
    # sample to come, for good (the watermark is committed with the offsets).
    TOO_FAR_IN_FUTURE = "too_far_in_future"


@dataclass(slots=True, eq=False)
class OpenWindow:
    """One series' window being filled; the aggregates are fields of their own (not an
    object) because every sample updates them."""

    name: str
    kind: MetricKind
    labels: Mapping[str, str]
    start: float
    size: float
    end: float
    first_offset: int  # the lowest offset that contributed, in its partition
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    last: float = 0.0
    last_at: float = -math.inf
    # Counter increase within the window, reset-aware: a drop means the counter restarted.
    increase: float = 0.0
    buckets: BucketIncrease | None = None
    origin: bytes | None = None  # the traceparent of the record that opened the window


@dataclass(frozen=True, slots=True)
class WindowConfig:
    sizes_s: tuple[float, ...] = (10.0, 60.0)
    allowed_lateness_s: float = 5.0
    idle_grace_s: float = 5.0
    # New series beyond these are rejected (0: no limit): per metric name, in all, and
    # new metric names beyond a number of distinct ones.
    max_series_per_metric: int = 0
    max_series: int = 0
    max_metric_names: int = 0


@dataclass(slots=True)
class _PartitionClock:
    newest_event: float = -math.inf
    watermark: float = -math.inf
    last_arrival: float | None = None  # processing time of the last close_due with arrivals


@dataclass(slots=True, eq=False)
class _Series:
    """One series in one partition: its identity, its newest sample, and the newest open
    window of each size (the hot path's target; older open windows are in ``others``)."""

    name: str
    series: str
    labels: Mapping[str, str]
    current: list[OpenWindow | None]
    others: dict[tuple[int, float], OpenWindow] = field(default_factory=dict)
    latest: MetricSampledFields | None = None


@dataclass(slots=True, eq=False)
class _Partition:
    clock: _PartitionClock = field(default_factory=_PartitionClock)
    applied_to: int = -1
    arrived: bool = False
    # Replay after a restart: below this offset, windows behind this watermark are done.
    resumed: Checkpoint | None = None
    # Series identity by Kafka key (the series id by topic contract), checked against the
    # sample so a mis-keyed record is still windowed by its own name and labels.
    by_key: dict[bytes, _Series] = field(default_factory=dict)
    by_series: dict[str, _Series] = field(default_factory=dict)
    # Open windows by their end: windows of all series share boundaries, so closing is a
    # walk over a few ends, not over every window.
    by_end: dict[float, list[tuple[_Series, int, OpenWindow]]] = field(default_factory=dict)


class Rollups:
    def __init__(self, config: WindowConfig) -> None:
        if not config.sizes_s or any(s <= 0 for s in config.sizes_s):
            raise ValueError("window sizes must be positive")
        self._config = config
        self._sizes = tuple(enumerate(config.sizes_s))
        # Keyed by partition: a partition's windows live and close by its own watermark.
        self._parts: dict[Partition, _Partition] = {}
        self._last: tuple[Partition, _Partition] | None = None
        self._open_count = 0
        self._limit = SeriesLimit(
            SeriesLimits(config.max_series_per_metric, config.max_series, config.max_metric_names)
        )

    def watermark(self, partition: Partition) -> float:
        part = self._parts.get(partition)
        return part.clock.watermark if part else -math.inf

    @property
    def open_windows(self) -> int:
        return self._open_count

    def _part(self, partition: Partition) -> _Partition:
        last = self._last
        if last is not None and last[0] == partition:
            return last[1]
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Partition()
        self._last = (partition, part)
        return part

    def add(  # noqa: PLR0912 - the hot path stays one function: a call per sample costs
        self,
        sample: MetricSampledFields,
        partition: Partition,
        offset: int,
        key: bytes | None = None,
        headers: Iterable[tuple[str, bytes]] | None = None,
    ) -> SampleOutcome:
        """``headers``: the record's (Kafka) headers; read only when the sample opens a
        window (for its ``traceparent``)."""
        last = self._last
        part = last[1] if last is not None and last[0] == partition else self._part(partition)
        if offset < part.applied_to:
            return SampleOutcome.DUPLICATE
        part.applied_to = offset + 1
        part.arrived = True
        state = part.by_key.get(key) if key is not None else None
        if state is None or state.name != sample.name or state.labels != sample.labels:
            found = self._series(part, sample, key)
            if isinstance(found, SampleOutcome):
                return found  # a rejected sample moves no watermark
            state = found
        clock = part.clock
        at = sample.sampled_at
        if at > clock.newest_event:  # noqa: PLR1730 - max() costs a call per sample
            clock.newest_event = at
        latest = state.latest
        if latest is None or latest.sampled_at <= at:
            state.latest = sample
        resumed = part.resumed
        replaying = resumed is not None and offset < resumed.applied_to
        watermark = resumed.watermark if replaying and resumed else clock.watermark
        accepted = False
        value = sample.value
        counter = sample.kind is MetricKind.COUNTER
        histogram = sample.buckets is not None
        current = state.current
        for i, size in self._sizes:
            window = current[i]
            if window is None or not (window.start <= at < window.end):
                start = math.floor(at / size) * size
                if start + size <= watermark:
                    continue
                window = self._window(part, state, i, size, start, sample, offset, headers)
            accepted = True
            if counter and window.count and at >= window.last_at:
                previous = window.last
                # A reset adds the new value, as Prometheus' increase() does; never a
                # negative one (no counter restarts below zero), so the increase only
                # grows and cannot become inf - inf = NaN.
                window.increase += (
                    value - previous if value >= previous else (value if value > 0.0 else 0.0)
                )
            window.count += 1
            window.total += value
            if value < window.minimum:  # noqa: PLR1730 - min() costs a call per sample
                window.minimum = value
            if value > window.maximum:  # noqa: PLR1730
                window.maximum = value
            if at >= window.last_at:
                window.last = value
                window.last_at = at
            if histogram:
                window.buckets = fold_sample(window.buckets, sample)
        if accepted:
            return SampleOutcome.ACCEPTED
        return SampleOutcome.REPLAYED if replaying else SampleOutcome.LATE

    def _window(  # noqa: PLR0917 - the hot path's slow branch; no tuple to build
        self,
        part: _Partition,
        state: _Series,
        index: int,
        size: float,
        start: float,
        sample: MetricSampledFields,
        offset: int,
        headers: Iterable[tuple[str, bytes]] | None,
    ) -> OpenWindow:
        current = state.current[index]
        if current is not None and current.start == start:
            return current
        window = state.others.get((index, start))
        if window is not None:
            return window
        window = OpenWindow(
            sample.name, sample.kind, state.labels, start, size, start + size, offset
        )
        window.origin = traceparent_of(headers)
        if current is None or start > current.start:
            if current is not None:
                state.others[(index, current.start)] = current
            state.current[index] = window
        else:
            state.others[(index, start)] = window
        part.by_end.setdefault(start + size, []).append((state, index, window))
        self._open_count += 1
        return window

    def _series(
        self, part: _Partition, sample: MetricSampledFields, key: bytes | None
    ) -> _Series | SampleOutcome:
        """The series of a sample whose key is new or does not match its name and labels;
        a new series is checked (names, cardinality) here, once."""
        series = series_id(sample.name, sample.labels)
        state = part.by_series.get(series)
        if state is None:
            limit = self._limit
            if not limit.holds(sample.name, series):
                if name_problem(sample.name, sample.labels) is not None:
                    return SampleOutcome.INVALID_NAME
                if not limit.admit(sample.name, series):
                    return SampleOutcome.OVER_CARDINALITY
            state = _Series(
                sample.name, series, dict(sample.labels), [None] * len(self._config.sizes_s)
            )
            part.by_series[series] = state
        if key is not None:
            if len(part.by_key) >= _KEY_CACHE_MAX:
                part.by_key.clear()
            part.by_key[key] = state
        return state

    @property
    def latest(self) -> dict[str, MetricSampledFields]:
        """Per series, the newest sample by event time (for ``/metrics/apps``)."""
        out: dict[str, MetricSampledFields] = {}
        for part in self._parts.values():
            for series, state in part.by_series.items():
                sample = state.latest
                if sample is None:
                    continue
                known = out.get(series)
                if known is None or known.sampled_at <= sample.sampled_at:
                    out[series] = sample
        return out

    def take_rejected_series(self) -> dict[str, int]:
        """Samples rejected by the per-metric limit per metric name since the last call."""
        return self._limit.take_rejected()

    def take_series_refusals(self) -> dict[SeriesRefusal, int]:
        """Samples of refused series per reason (every limit) since the last call."""
        return self._limit.take_refusals()

    @property
    def series_total(self) -> int:
        """Series held (the cardinality this replica carries)."""
        return self._limit.total

    def series_count(self) -> dict[str, int]:
        return self._limit.counts()

    def unconfirmed_series(self) -> list[SeriesKey]:
        """New series admitted against this replica's view of the limit only."""
        return self._limit.unconfirmed()

    def held_series(self) -> list[SeriesKey]:
        return self._limit.held()

    def confirm_series(self, series: Iterable[SeriesKey]) -> None:
        self._limit.confirmed(series)

    def refuse_series(
        self, series: Iterable[SeriesKey], reason: SeriesRefusal = SeriesRefusal.PER_METRIC
    ) -> None:
        """Undo new series the group-wide limit refused: their state and open windows go,
        their samples count as rejected, and their later samples are rejected at once."""
        refused = list(series)
        self._limit.refuse(refused, reason)
        gone = {one for _, one in refused}
        for part in self._parts.values():
            states = [s for s in map(part.by_series.get, gone) if s is not None]
            if not states:
                continue
            for state in states:
                del part.by_series[state.series]
                samples = max(
                    (
                        sum(w.count for w in [state.current[i], *state.others.values()] if w)
                        for i in range(len(state.current))
                    ),
                    default=0,
                )
                self._limit.count_rejected(state.name, samples, reason)
            ids = {id(state) for state in states}
            part.by_key = {k: v for k, v in part.by_key.items() if id(v) not in ids}
            for end, windows in list(part.by_end.items()):
                kept = [entry for entry in windows if id(entry[0]) not in ids]
                self._open_count -= len(windows) - len(kept)
                if kept:
                    part.by_end[end] = kept
                else:
                    del part.by_end[end]

    def resume(self, partition: Partition, checkpoint: Checkpoint) -> None:
        """Continue a partition from the checkpoint committed with its offset."""
        part = self._part(partition)
        part.resumed = checkpoint
        clock = part.clock
        clock.watermark = max(clock.watermark, checkpoint.watermark)
        clock.newest_event = max(
            clock.newest_event, checkpoint.watermark + self._config.allowed_lateness_s
        )

    def checkpoints(self) -> dict[Partition, Checkpoint]:
        """Per partition seen, what to commit with its offset now."""
        return {
            partition: Checkpoint(part.clock.watermark, part.applied_to)
            for partition, part in self._parts.items()
            if part.applied_to >= 0 and not math.isinf(part.clock.watermark)
        }

    def close_due(
        self, now: float, lagging: Collection[Partition] = frozenset()
    ) -> list[ClosedWindow]:
        """Advance each partition's watermark and close every window it has passed.

        ``lagging``: partitions the consumer has not read to their end. They are never
        idle, however long nothing arrived: their samples are waiting on the broker (the
        handler stalled on its database, or catching up after), and moving their
        watermark by wall clock would close the windows those samples belong to."""
        lateness = self._config.allowed_lateness_s
        grace = self._config.idle_grace_s
        closed = []
        for partition, part in self._parts.items():
            clock = part.clock
            if part.arrived:
                clock.last_arrival = now
                part.arrived = False
            candidate = clock.newest_event - lateness
            if (
                clock.last_arrival is not None
                and now - clock.last_arrival >= grace
                and partition not in lagging
            ):
                candidate = max(candidate, now - lateness - grace)
            clock.watermark = max(clock.watermark, candidate)
            for end in [e for e in part.by_end if e <= clock.watermark]:
                for state, index, window in part.by_end.pop(end):
                    if state.current[index] is window:
                        state.current[index] = None
                    else:
                        state.others.pop((index, window.start), None)
                    self._open_count -= 1
                    closed.append(_close(state.series, window))
        closed.sort(key=lambda w: (w.end, w.series))
        return closed

    def hold_from(self) -> dict[Partition, int]:
        """Per partition, the lowest offset still held only in open windows."""
        hold: dict[Partition, int] = {}
        for partition, part in self._parts.items():
            # Offsets only grow within a partition and each list is in creation order,
            # so each list's first window holds its lowest offset.
            firsts = [windows[0][2].first_offset for windows in part.by_end.values() if windows]
            if firsts:
                hold[partition] = min(firsts)
        return hold

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop the state of partitions this instance no longer owns; their new owner
        replays them from the last commit, which is at or before every open window."""
        for partition in set(partitions):
            part = self._parts.pop(partition, None)
            if part is not None:
                self._open_count -= sum(len(ws) for ws in part.by_end.values())
                self._release(part.by_series.values())
        self._last = None

    def reap_idle(self, before: float) -> list[SeriesKey]:
        """Free the cardinality slots of series whose newest sample is older than
        ``before`` (event time) and that hold no open window; returns them. Refused
        series may ask again afterwards."""
        reaped: list[_Series] = []
        for part in self._parts.values():
            idle = [
                state
                for state in part.by_series.values()
                if state.latest is not None
                and state.latest.sampled_at < before
                and not state.others
                and all(w is None for w in state.current)
            ]
            for state in idle:
                del part.by_series[state.series]
            if idle:
                gone = {id(state) for state in idle}
                part.by_key = {k: v for k, v in part.by_key.items() if id(v) not in gone}
            reaped.extend(idle)
        self._limit.forgive()
        return self._release(reaped)

    def _release(self, states: Iterable[_Series]) -> list[SeriesKey]:
        """Free the slots of series no partition here holds any more; returns them."""
        held = {s for part in self._parts.values() for s in part.by_series}
        released = []
        for state in states:
            if state.series not in held:
                self._limit.release(state.name, state.series)
                released.append((state.name, state.series))
        return released


_KEY_CACHE_MAX = 1_000_000


def _close(series: str, window: OpenWindow) -> ClosedWindow:
    """The window's aggregates, each finite (``rollup.closed``): samples are finite, so
    only the sums (``total``, ``increase``, bucket increases) can overflow; the sums of
    finite numbers are never NaN, and the increase never (it only grows)."""
    total, increase = window.total, window.increase
    quantiles = window.buckets.quantiles() if window.buckets is not None else {}
    flagged: list[tuple[str, OutOfRange]] = []
    if not (math.isfinite(total) and math.isfinite(increase)):
        total = bounded(total, RollupStat.SUM, flagged) or 0.0
        increase = bounded(increase, RollupStat.INCREASE, flagged) or 0.0
    if quantiles and not all(map(math.isfinite, quantiles.values())):
        quantiles = {
            stat: kept
            for stat, value in quantiles.items()
            if (kept := bounded(value, stat, flagged)) is not None
        }
    return ClosedWindow(
        series=series,
        name=window.name,
        kind=window.kind,
        labels=window.labels,
        start=window.start,
        end=window.end,
        count=window.count,
        total=total,
        minimum=window.minimum,
        maximum=window.maximum,
        last=window.last,
        increase=increase,
        quantiles=quantiles,
        origin=window.origin,
        out_of_range=tuple(flagged),
    )
