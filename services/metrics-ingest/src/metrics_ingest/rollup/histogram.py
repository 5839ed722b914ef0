"""Histogram windows: the per-bucket increase of cumulative bucket counters within a
window (Prometheus semantics, ``+Inf`` = ``count``), and quantiles interpolated within
buckets as ``histogram_quantile`` does. Like ``rate()``, a window needs two samples of a
series to have an increase."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from opsmesh.catalogue import HISTOGRAM_QUANTILES
from opsmesh.events.metrics import MetricSampledFields

_INF = math.inf


@dataclass(slots=True)
class BucketIncrease:
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

    def quantiles(self) -> dict[str, float]:
        """The catalogue's quantile stats (p50 ... p99) that have data."""
        out: dict[str, float] = {}
        for q, stat in HISTOGRAM_QUANTILES.items():
            value = bucket_quantile(q, self.bounds, self.increase)
            if value is not None:
                out[stat] = value
        return out


def fold_sample(buckets: BucketIncrease | None, sample: MetricSampledFields) -> BucketIncrease:
    """``buckets`` (a new one when ``None``) with the sample's cumulative counts folded in."""
    finite = sample.buckets or []
    bounds = (*(b.le for b in finite), _INF)
    counts = [b.count for b in finite]
    counts.append(sample.count if sample.count is not None else (counts[-1] if counts else 0.0))
    if buckets is None:
        buckets = BucketIncrease()
    buckets.add(bounds, counts, sample.sampled_at)
    return buckets


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
            width = bound - lower
            if math.isinf(width):  # bounds near ±1.8e308: interpolate without the overflow
                fraction = (rank - previous_count) / (count - previous_count)
                return lower * (1.0 - fraction) + bound * fraction
            return lower + width * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return previous_bound
