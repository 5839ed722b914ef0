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
    first_offsets: dict[Partition, int] = field(default_factory=dict)
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


class Rollups:
    def __init__(self, config: WindowConfig) -> None:
        if not config.sizes_s or any(s <= 0 for s in config.sizes_s):
            raise ValueError("window sizes must be positive")
        self._config = config
        # Keyed by partition too: a partition's windows live and close by its own watermark.
        self._open: dict[tuple[Partition, str, float, float], OpenWindow] = {}
        self._clocks: dict[Partition, _PartitionClock] = {}
        self._arrived: set[Partition] = set()
        self._applied_to: dict[Partition, int] = {}
        # Replay after a restart: below this offset, windows behind this watermark are done.
        self._resumed: dict[Partition, Checkpoint] = {}
        # Series identity by Kafka key (the series id by topic contract), checked against
        # the sample so a mis-keyed record is still windowed by its own name and labels.
        self._series_by_key: dict[bytes, tuple[str, str, Mapping[str, str]]] = {}
        self._series_per_name: dict[str, set[str]] = {}
        self.rejected_series: dict[str, int] = {}  # per metric name, since the last take
        self.latest: dict[str, MetricSampled] = {}  # per series, newest by event time

    def watermark(self, partition: Partition) -> float:
        clock = self._clocks.get(partition)
        return clock.watermark if clock else -math.inf

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def add(
        self, sample: MetricSampled, partition: Partition, offset: int, key: bytes | None = None
    ) -> SampleOutcome:
        if offset < self._applied_to.get(partition, -1):
            return SampleOutcome.DUPLICATE
        self._applied_to[partition] = offset + 1
        clock = self._clocks.get(partition)
        if clock is None:
            clock = self._clocks[partition] = _PartitionClock()
        self._arrived.add(partition)
        at = sample.sampled_at
        clock.newest_event = max(clock.newest_event, at)
        series = self._series(sample, key)
        if series is None:
            return SampleOutcome.OVER_CARDINALITY
        latest = self.latest.get(series)
        if latest is None or latest.sampled_at <= at:
            self.latest[series] = sample
        watermark = clock.watermark
        resumed = self._resumed.get(partition)
        if resumed is not None and offset < resumed.applied_to:
            watermark = resumed.watermark
        outcome = SampleOutcome.LATE
        for size in self._config.sizes_s:
            start = math.floor(at / size) * size
            if start + size <= watermark:
                continue
            outcome = SampleOutcome.ACCEPTED
            key4 = (partition, series, size, start)
            window = self._open.get(key4)
            if window is None:
                window = OpenWindow(sample.name, sample.kind, dict(sample.labels), start, size)
                window.first_offsets[partition] = offset
                self._open[key4] = window
            window.aggregate.add(sample.value, at, sample.kind)
            if sample.buckets is not None:
                _add_buckets(window, sample)
        if outcome is SampleOutcome.LATE and resumed is not None and offset < resumed.applied_to:
            return SampleOutcome.REPLAYED
        return outcome

    def _series(self, sample: MetricSampled, key: bytes | None) -> str | None:
        known = self._series_by_key.get(key) if key is not None else None
        if known is not None and known[0] == sample.name and known[2] == sample.labels:
            return known[1]
        series = series_id(sample.name, sample.labels)
        limit = self._config.max_series_per_metric
        if limit:
            members = self._series_per_name.setdefault(sample.name, set())
            if series not in members:
                if len(members) >= limit:
                    self.rejected_series[sample.name] = self.rejected_series.get(sample.name, 0) + 1
                    return None
                members.add(series)
        if key is not None:
            if len(self._series_by_key) >= _KEY_CACHE_MAX:
                self._series_by_key.clear()
            self._series_by_key[key] = (sample.name, series, sample.labels)
        return series

    def take_rejected_series(self) -> dict[str, int]:
        """New series rejected per metric name since the last call."""
        taken, self.rejected_series = self.rejected_series, {}
        return taken

    def series_count(self) -> dict[str, int]:
        return {name: len(members) for name, members in self._series_per_name.items()}

    def forget_series(self, series: Iterable[tuple[str, str]]) -> None:
        """Free cardinality slots (and latest values) of series that went away."""
        for name, one in series:
            members = self._series_per_name.get(name)
            if members is not None:
                members.discard(one)
            self.latest.pop(one, None)

    def resume(self, partition: Partition, checkpoint: Checkpoint) -> None:
        """Continue a partition from the checkpoint committed with its offset."""
        self._resumed[partition] = checkpoint
        clock = self._clocks.get(partition)
        if clock is None:
            clock = self._clocks[partition] = _PartitionClock()
        clock.watermark = max(clock.watermark, checkpoint.watermark)
        clock.newest_event = max(
            clock.newest_event, checkpoint.watermark + self._config.allowed_lateness_s
        )

    def checkpoints(self) -> dict[Partition, Checkpoint]:
        """Per partition seen, what to commit with its offset now."""
        return {
            partition: Checkpoint(clock.watermark, self._applied_to[partition])
            for partition, clock in self._clocks.items()
            if partition in self._applied_to and not math.isinf(clock.watermark)
        }

    def close_due(self, now: float) -> list[ClosedWindow]:
        """Advance each partition's watermark and close every window it has passed."""
        lateness = self._config.allowed_lateness_s
        grace = self._config.idle_grace_s
        for partition in self._arrived:
            self._clocks[partition].last_arrival = now
        self._arrived.clear()
        for clock in self._clocks.values():
            candidate = clock.newest_event - lateness
            if clock.last_arrival is not None and now - clock.last_arrival >= grace:
                candidate = max(candidate, now - lateness - grace)
            clock.watermark = max(clock.watermark, candidate)
        closed = []
        for key, window in list(self._open.items()):
            if window.end <= self._clocks[key[0]].watermark:
                del self._open[key]
                closed.append(_close(key[1], window))
        closed.sort(key=lambda w: (w.end, w.series))
        return closed

    def hold_from(self) -> dict[Partition, int]:
        """Per partition, the lowest offset still held only in open windows."""
        hold: dict[Partition, int] = {}
        for window in self._open.values():
            for partition, offset in window.first_offsets.items():
                if offset < hold.get(partition, offset + 1):
                    hold[partition] = offset
        return hold

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop the state of partitions this instance no longer owns; their new owner
        replays them from the last commit, which is at or before every open window."""
        lost = set(partitions)
        for partition in lost:
            self._applied_to.pop(partition, None)
            self._resumed.pop(partition, None)
            self._clocks.pop(partition, None)
            self._arrived.discard(partition)
        for key in [k for k in self._open if k[0] in lost]:
            del self._open[key]


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
