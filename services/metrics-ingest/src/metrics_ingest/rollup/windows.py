"""Tumbling windows per series with a per-partition event-time watermark.

Each Kafka partition has its own watermark: the newest sample time seen in it minus the
allowed lateness. A window ``[start, end)`` closes when its partition's watermark passes
its end; a sample for a window already behind the watermark is late, counted and dropped.
When a partition goes quiet (no sample arrived for ``idle_grace_s`` of processing time),
wall-clock time minus lateness and grace moves its watermark on, so quiet series still
close. A partition that is replaying old samples keeps receiving them, so it is never
idle and its replay is not mistaken for late data.

Each open window remembers the lowest offset that contributed to it, so the consumer
commits only up to samples whose windows are durable.

A ``Checkpoint`` (the partition's watermark and the offset processed up to) is committed
with each offset. After a restart the partition resumes from it: a replayed sample whose
window was already behind the watermark at that commit belongs to a window that was
closed and emitted in full, so it is skipped (``REPLAYED``) instead of re-forming that
window from a partial replay.

Histograms carry cumulative bucket counters (Prometheus semantics, ``+Inf`` = ``count``):
a window's distribution is the reset-aware increase of each bucket between the window's
samples, and its quantiles are interpolated within buckets as ``histogram_quantile``
does. Like ``rate()``, a window needs two samples of a series to have an increase.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opsmesh.events.metrics import MetricKind, MetricSampled
from opsmesh.labels import series_id

Partition = tuple[str, int]


class SampleOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    LATE = "late"
    DUPLICATE = "duplicate"  # offset already applied (a retried batch)
    REPLAYED = "replayed"  # replay after a restart; its window was already emitted in full
    OVER_CARDINALITY = "over_cardinality"  # a new series beyond its metric's limit


QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a partition's committed offset carries: its watermark then, and the offset
    everything before which had been applied."""

    watermark: float
    applied_to: int

    def encode(self) -> str:
        return f"v1;wm={self.watermark!r};to={self.applied_to}"

    @staticmethod
    def decode(text: str) -> Checkpoint | None:
        """``None`` for empty or foreign metadata: the partition then starts fresh."""
        parts = dict(p.split("=", 1) for p in text.split(";")[1:] if "=" in p)
        if not text.startswith("v1;") or "wm" not in parts or "to" not in parts:
            return None
        try:
            return Checkpoint(float(parts["wm"]), int(parts["to"]))
        except ValueError:
            return None


@dataclass(slots=True)
class _Buckets:
    """Per-bucket increase of a cumulative histogram within one window."""

    bounds: tuple[float, ...] = ()  # upper bounds, the last one +Inf
    last: list[float] = field(default_factory=list)
    last_at: float = -math.inf
    increase: list[float] = field(default_factory=list)

    def add(self, bounds: tuple[float, ...], counts: list[float], at: float) -> None:
        if at < self.last_at:
            return  # an older snapshot arriving late tells nothing new about the increase
        if bounds != self.bounds:  # first snapshot, or the bucket layout changed
            self.bounds, self.last, self.last_at = bounds, counts, at
            self.increase = [0.0] * len(bounds)
            return
        reset = counts[-1] < self.last[-1]
        for i, count in enumerate(counts):
            self.increase[i] += count if reset else max(0.0, count - self.last[i])
        self.last, self.last_at = counts, at

    def quantile(self, q: float) -> float | None:
        return bucket_quantile(q, self.bounds, self.increase)


def bucket_quantile(q: float, bounds: tuple[float, ...], cumulative: list[float]) -> float | None:
    """``histogram_quantile``: linear interpolation inside the bucket holding rank q·total;
    the ``+Inf`` bucket answers with the highest finite bound. ``None`` without data."""
    if not bounds or not cumulative or cumulative[-1] <= 0:
        return None
    rank = q * cumulative[-1]
    previous_bound, previous_count = 0.0, 0.0
    for i, (bound, count) in enumerate(zip(bounds, cumulative, strict=True)):
        if count >= rank:
            if math.isinf(bound):
                return previous_bound if i > 0 else None
            lower = previous_bound if i > 0 else min(0.0, bound)
            if count == previous_count:
                return bound
            return lower + (bound - lower) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return previous_bound


@dataclass(slots=True)
class Aggregate:
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    first: float = 0.0
    last: float = 0.0
    last_at: float = -math.inf
    first_at: float = math.inf
    # Counter increase within the window, reset-aware: a drop means the counter restarted.
    increase: float = 0.0

    def add(self, value: float, at: float, kind: MetricKind) -> None:
        if kind is MetricKind.COUNTER and self.count and at >= self.last_at:
            self.increase += value - self.last if value >= self.last else value
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        if at < self.first_at:
            self.first, self.first_at = value, at
        if at >= self.last_at:
            self.last, self.last_at = value, at


@dataclass(slots=True)
class OpenWindow:
    name: str
    kind: MetricKind
    labels: dict[str, str]
    start: float
    size: float
    aggregate: Aggregate = field(default_factory=Aggregate)
    first_offset: int = -1  # the lowest offset that contributed, in its partition
    buckets: _Buckets | None = None

    @property
    def end(self) -> float:
        return self.start + self.size


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    series: str
    name: str
    kind: MetricKind
    labels: Mapping[str, str]
    start: float
    end: float
    count: int
    total: float
    minimum: float
    maximum: float
    last: float
    increase: float
    quantiles: Mapping[str, float] = field(default_factory=dict)  # "p50" -> value

    @property
    def value(self) -> float:
        """The headline value rules compare: rate for counters, last for gauges, mean otherwise."""
        if self.kind is MetricKind.COUNTER:
            return self.increase / (self.end - self.start)
        if self.kind is MetricKind.GAUGE:
            return self.last
        return self.total / self.count if self.count else 0.0

    def stats(self) -> dict[str, float]:
        out = {
            "count": float(self.count),
            "sum": self.total,
            "min": self.minimum,
            "max": self.maximum,
            "last": self.last,
            "mean": self.total / self.count if self.count else 0.0,
        }
        if self.kind is MetricKind.COUNTER:
            out["increase"] = self.increase
            out["rate"] = self.value
        out.update(self.quantiles)
        return out


@dataclass(frozen=True, slots=True)
class WindowConfig:
    sizes_s: tuple[float, ...] = (10.0, 60.0)
    allowed_lateness_s: float = 5.0
    idle_grace_s: float = 5.0
    # New series per metric name beyond this are rejected (0: no limit).
    max_series_per_metric: int = 0


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
    latest: MetricSampled | None = None


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
        self._series_per_name: dict[str, set[str]] = {}
        self.rejected_series: dict[str, int] = {}  # per metric name, since the last take

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

    def add(
        self, sample: MetricSampled, partition: Partition, offset: int, key: bytes | None = None
    ) -> SampleOutcome:
        part = self._part(partition)
        if offset < part.applied_to:
            return SampleOutcome.DUPLICATE
        part.applied_to = offset + 1
        part.arrived = True
        clock = part.clock
        at = sample.sampled_at
        if at > clock.newest_event:  # noqa: PLR1730 - max() costs a call per sample
            clock.newest_event = at
        state = part.by_key.get(key) if key is not None else None
        if state is None or state.name != sample.name or state.labels != sample.labels:
            state = self._series(part, sample, key)
            if state is None:
                return SampleOutcome.OVER_CARDINALITY
        latest = state.latest
        if latest is None or latest.sampled_at <= at:
            state.latest = sample
        watermark = clock.watermark
        resumed = part.resumed
        replaying = resumed is not None and offset < resumed.applied_to
        if replaying and resumed is not None:
            watermark = resumed.watermark
        accepted = False
        value = sample.value
        kind = sample.kind
        current = state.current
        for i, size in self._sizes:
            window = current[i]
            if window is None or not (window.start <= at < window.start + size):
                start = math.floor(at / size) * size
                if start + size <= watermark:
                    continue
                window = self._window(part, state, i, size, start, sample, offset)
            accepted = True
            window.aggregate.add(value, at, kind)
            if sample.buckets is not None:
                _add_buckets(window, sample)
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
        sample: MetricSampled,
        offset: int,
    ) -> OpenWindow:
        current = state.current[index]
        if current is not None and current.start == start:
            return current
        window = state.others.get((index, start))
        if window is not None:
            return window
        window = OpenWindow(sample.name, sample.kind, dict(sample.labels), start, size)
        window.first_offset = offset
        if current is None or start > current.start:
            if current is not None:
                state.others[(index, current.start)] = current
            state.current[index] = window
        else:
            state.others[(index, start)] = window
        part.by_end.setdefault(start + size, []).append((state, index, window))
        self._open_count += 1
        return window

    def _series(self, part: _Partition, sample: MetricSampled, key: bytes | None) -> _Series | None:
        series = series_id(sample.name, sample.labels)
        state = part.by_series.get(series)
        if state is None:
            limit = self._config.max_series_per_metric
            members = self._series_per_name.get(sample.name)
            if members is None:
                members = self._series_per_name[sample.name] = set()
            if series not in members:
                if limit and len(members) >= limit:
                    self.rejected_series[sample.name] = self.rejected_series.get(sample.name, 0) + 1
                    return None
                members.add(series)
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
    def latest(self) -> dict[str, MetricSampled]:
        """Per series, the newest sample by event time (for ``/metrics/apps``)."""
        out: dict[str, MetricSampled] = {}
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
        """New series rejected per metric name since the last call."""
        taken, self.rejected_series = self.rejected_series, {}
        return taken

    def series_count(self) -> dict[str, int]:
        return {name: len(members) for name, members in self._series_per_name.items()}

    def forget_series(self, series: Iterable[tuple[str, str]]) -> None:
        """Free cardinality slots of series that went away (and their latest values)."""
        for name, one in series:
            members = self._series_per_name.get(name)
            if members is not None:
                members.discard(one)
            for part in self._parts.values():
                state = part.by_series.get(one)
                if state is not None:
                    state.latest = None

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

    def close_due(self, now: float) -> list[ClosedWindow]:
        """Advance each partition's watermark and close every window it has passed."""
        lateness = self._config.allowed_lateness_s
        grace = self._config.idle_grace_s
        closed = []
        for part in self._parts.values():
            clock = part.clock
            if part.arrived:
                clock.last_arrival = now
                part.arrived = False
            candidate = clock.newest_event - lateness
            if clock.last_arrival is not None and now - clock.last_arrival >= grace:
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

    def reap_idle(self, before: float) -> int:
        """Free the cardinality slots of series whose newest sample is older than
        ``before`` (event time) and that hold no open window; returns how many."""
        reaped = 0
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
            self._release(idle)
            reaped += len(idle)
        return reaped

    def _release(self, states: Iterable[_Series]) -> None:
        held = {s for part in self._parts.values() for s in part.by_series}
        for state in states:
            members = self._series_per_name.get(state.name)
            if members is not None and state.series not in held:
                members.discard(state.series)


_KEY_CACHE_MAX = 1_000_000
_INF = math.inf


def _add_buckets(window: OpenWindow, sample: MetricSampled) -> None:
    buckets = sample.buckets or []
    bounds = (*(b.le for b in buckets), _INF)
    counts = [b.count for b in buckets]
    counts.append(sample.count if sample.count is not None else (counts[-1] if counts else 0.0))
    if window.buckets is None:
        window.buckets = _Buckets()
    window.buckets.add(bounds, counts, sample.sampled_at)


def _close(series: str, window: OpenWindow) -> ClosedWindow:
    agg = window.aggregate
    quantiles: dict[str, float] = {}
    if window.buckets is not None:
        for q in QUANTILES:
            value = window.buckets.quantile(q)
            if value is not None:
                quantiles[f"p{q * 100:g}"] = value
    return ClosedWindow(
        series=series,
        name=window.name,
        kind=window.kind,
        labels=window.labels,
        start=window.start,
        end=window.end,
        count=agg.count,
        total=agg.total,
        minimum=agg.minimum,
        maximum=agg.maximum,
        last=agg.last,
        increase=agg.increase,
        quantiles=quantiles,
    )
