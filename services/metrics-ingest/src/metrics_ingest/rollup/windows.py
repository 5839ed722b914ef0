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
        return out


@dataclass(frozen=True, slots=True)
class WindowConfig:
    sizes_s: tuple[float, ...] = (10.0, 60.0)
    allowed_lateness_s: float = 5.0
    idle_grace_s: float = 5.0


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

    def watermark(self, partition: Partition) -> float:
        clock = self._clocks.get(partition)
        return clock.watermark if clock else -math.inf

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def add(self, sample: MetricSampled, partition: Partition, offset: int) -> SampleOutcome:
        if offset < self._applied_to.get(partition, -1):
            return SampleOutcome.DUPLICATE
        self._applied_to[partition] = offset + 1
        clock = self._clocks.get(partition)
        if clock is None:
            clock = self._clocks[partition] = _PartitionClock()
        self._arrived.add(partition)
        at = sample.sampled_at
        clock.newest_event = max(clock.newest_event, at)
        series = series_id(sample.name, sample.labels)
        outcome = SampleOutcome.LATE
        for size in self._config.sizes_s:
            start = math.floor(at / size) * size
            if start + size <= clock.watermark:
                continue
            outcome = SampleOutcome.ACCEPTED
            key = (partition, series, size, start)
            window = self._open.get(key)
            if window is None:
                window = OpenWindow(sample.name, sample.kind, dict(sample.labels), start, size)
                self._open[key] = window
            window.aggregate.add(sample.value, at, sample.kind)
            window.first_offsets.setdefault(partition, offset)
        return outcome

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
            self._clocks.pop(partition, None)
            self._arrived.discard(partition)
        for key in [k for k in self._open if k[0] in lost]:
            del self._open[key]


def _close(series: str, window: OpenWindow) -> ClosedWindow:
    agg = window.aggregate
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
    )
