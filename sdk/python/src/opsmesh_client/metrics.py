"""Counters, gauges and histograms with labels, kept in memory and sent as samples.

Recording is a dictionary update under a lock (no I/O); every ``metrics_interval_s`` the
sending thread collects each series as one ``MetricSampled`` — counters cumulative, as
metrics-ingest's rollups expect (they compute increases and rates, and reset on a drop) —
and every sample carries the client's constant labels (service, instance).
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

from opsmesh_client.wire import Record, metric_sample

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
MAX_LABELS = 64
MAX_BUCKETS = 64
# Prometheus' client default buckets: request latencies in seconds.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

Collector = Callable[[float], Iterable[Record]]  # called with the collection time


class MetricError(ValueError):
    """A metric declared or used wrongly (a programming error, raised at the call)."""


def _check_names(name: str, labelnames: Sequence[str]) -> None:
    if METRIC_NAME.match(name) is None:
        raise MetricError(f"metric name {name!r} does not match {METRIC_NAME.pattern}")
    for label in labelnames:
        if LABEL_NAME.match(label) is None:
            raise MetricError(f"label name {label!r} does not match {LABEL_NAME.pattern}")
    if len(labelnames) > MAX_LABELS:
        raise MetricError(f"at most {MAX_LABELS} labels")


S = TypeVar("S")


class _Metric(Generic[S]):
    kind = ""

    def __init__(self, name: str, labelnames: Sequence[str]) -> None:
        _check_names(name, labelnames)
        self.name = name
        self.labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], S] = {}
        self._lock = threading.Lock()

    def _new(self) -> S:
        raise NotImplementedError

    def _child(self, labels: Mapping[str, str]) -> S:
        if len(labels) != len(self.labelnames):
            raise MetricError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        try:
            key = tuple(str(labels[n]) for n in self.labelnames)
        except KeyError as exc:
            raise MetricError(f"{self.name} takes labels {self.labelnames}") from exc
        series = self._series.get(key)
        if series is None:
            with self._lock:
                series = self._series.setdefault(key, self._new())
        return series

    def _items(self) -> list[tuple[dict[str, str], S]]:
        with self._lock:
            return [
                (dict(zip(self.labelnames, k, strict=True)), s) for k, s in self._series.items()
            ]


class _Value:
    __slots__ = ("lock", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.lock = threading.Lock()


class CounterSeries:
    __slots__ = ("_value",)

    def __init__(self, value: _Value) -> None:
        self._value = value

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0 or not math.isfinite(amount):
            raise MetricError("a counter only goes up by a finite amount")
        with self._value.lock:
            self._value.value += amount


class Counter(_Metric[_Value]):
    kind = "counter"

    def _new(self) -> _Value:
        return _Value()

    def labels(self, **labels: str) -> CounterSeries:
        return CounterSeries(self._child(labels))

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def collect(self, at: float, constant: Mapping[str, str]) -> list[Record]:
        return [
            metric_sample(self.name, self.kind, v.value, {**constant, **labels}, at)
            for labels, v in self._items()
        ]


class GaugeSeries:
    __slots__ = ("_value",)

    def __init__(self, value: _Value) -> None:
        self._value = value

    def set(self, value: float) -> None:
        with self._value.lock:
            self._value.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._value.lock:
            self._value.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.inc(-amount)


class Gauge(_Metric[_Value]):
    kind = "gauge"

    def _new(self) -> _Value:
        return _Value()

    def labels(self, **labels: str) -> GaugeSeries:
        return GaugeSeries(self._child(labels))

    def set(self, value: float) -> None:
        self.labels().set(value)

    def collect(self, at: float, constant: Mapping[str, str]) -> list[Record]:
        return [
            metric_sample(self.name, self.kind, v.value, {**constant, **labels}, at)
            for labels, v in self._items()
            if math.isfinite(v.value)
        ]


class _Buckets:
    __slots__ = ("counts", "lock", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * (size + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0
        self.lock = threading.Lock()


class HistogramSeries:
    __slots__ = ("_bounds", "_buckets")

    def __init__(self, buckets: _Buckets, bounds: tuple[float, ...]) -> None:
        self._buckets = buckets
        self._bounds = bounds

    def observe(self, value: float) -> None:
        if not math.isfinite(value):
            raise MetricError("a histogram observes finite values")
        index = bisect.bisect_left(self._bounds, value)
        with self._buckets.lock:
            self._buckets.counts[index] += 1
            self._buckets.sum += value


class Histogram(_Metric[_Buckets]):
    kind = "histogram"

    def __init__(
        self, name: str, labelnames: Sequence[str], buckets: Sequence[float] = DEFAULT_BUCKETS
    ) -> None:
        bounds = tuple(sorted(float(b) for b in buckets if math.isfinite(b)))
        if not bounds or len(bounds) > MAX_BUCKETS - 1 or len(set(bounds)) != len(bounds):
            raise MetricError(f"a histogram needs 1..{MAX_BUCKETS - 1} distinct finite bounds")
        super().__init__(name, labelnames)
        self.bounds = bounds

    def _new(self) -> _Buckets:
        return _Buckets(len(self.bounds))

    def labels(self, **labels: str) -> HistogramSeries:
        return HistogramSeries(self._child(labels), self.bounds)

    def observe(self, value: float) -> None:
        self.labels().observe(value)

    def collect(self, at: float, constant: Mapping[str, str]) -> list[Record]:
        records = []
        for labels, b in self._items():
            with b.lock:
                counts, total = list(b.counts), b.sum
            cumulative, running = [], 0
            for bound, count in zip(self.bounds, counts, strict=False):
                running += count
                cumulative.append((bound, float(running)))
            records.append(
                metric_sample(
                    self.name,
                    self.kind,
                    total,
                    {**constant, **labels},
                    at,
                    buckets=cumulative,
                    count=float(sum(counts)),
                )
            )
        return records


class Registry:
    """The application's metrics and extra collectors (the Prometheus bridge, the request
    error ratio), collected together every interval."""

    def __init__(self) -> None:
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}
        self._collectors: list[Collector] = []
        self._lock = threading.Lock()

    def _register(self, metric: Counter | Gauge | Histogram) -> None:
        with self._lock:
            known = self._metrics.get(metric.name)
            if known is not None:
                raise MetricError(f"metric {metric.name!r} is already registered")
            self._metrics[metric.name] = metric

    def counter(self, name: str, labelnames: Sequence[str] = ()) -> Counter:
        metric = Counter(name, labelnames)
        self._register(metric)
        return metric

    def gauge(self, name: str, labelnames: Sequence[str] = ()) -> Gauge:
        metric = Gauge(name, labelnames)
        self._register(metric)
        return metric

    def histogram(
        self, name: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = DEFAULT_BUCKETS
    ) -> Histogram:
        metric = Histogram(name, labelnames, buckets)
        self._register(metric)
        return metric

    def add_collector(self, collector: Collector) -> None:
        with self._lock:
            self._collectors.append(collector)

    def remove_collector(self, collector: Collector) -> None:
        with self._lock:
            if collector in self._collectors:
                self._collectors.remove(collector)

    def collect(self, at: float, constant: Mapping[str, str]) -> list[Record]:
        with self._lock:
            metrics = list(self._metrics.values())
            collectors = list(self._collectors)
        records: list[Record] = []
        for metric in metrics:
            records.extend(metric.collect(at, constant))
        for collector in collectors:
            records.extend(collector(at))
        return records
