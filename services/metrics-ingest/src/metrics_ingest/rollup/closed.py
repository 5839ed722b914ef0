"""A closed window: the aggregates of one series over one ``[start, end)``.

Every value a window reports is finite. Samples are finite, but their sum can overflow
float64 (two samples of 1e308) and so can a counter's increase or an interpolated
quantile; PostgreSQL, JSON and the signal schema have no room for infinity (a signal
valued ``null`` is dead-lettered downstream). A sum beyond the range *saturates*: it is
reported as the largest finite float of its sign (±1.797e308), so a rule comparing it
with any threshold still sees it as huge, with its sign. A stat that is not a number at
all (a quantile interpolated across an overflowing bucket) is left out. Both are
recorded in ``out_of_range`` and counted by the stage
(``metrics_ingest_stats_out_of_range_total``).
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Mapping

import msgspec

from opsmesh.catalogue import RollupStat
from opsmesh.events.metrics import MetricKind

MAX_FLOAT = sys.float_info.max


class OutOfRange(enum.StrEnum):
    SATURATED = "saturated"  # beyond float64: reported as ±MAX_FLOAT
    DROPPED = "dropped"  # not a number: left out of the stats


def saturate(value: float) -> float:
    """``value`` within ±MAX_FLOAT (NaN passes through: see ``bounded``)."""
    if value > MAX_FLOAT:
        return MAX_FLOAT
    if value < -MAX_FLOAT:
        return -MAX_FLOAT
    return value


def bounded(value: float, stat: str, flagged: list[tuple[str, OutOfRange]]) -> float | None:
    """``value`` saturated, or None for NaN; what was done is appended to ``flagged``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        flagged.append((stat, OutOfRange.DROPPED))
        return None
    flagged.append((stat, OutOfRange.SATURATED))
    return saturate(value)


class ClosedWindow(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Built once per closed window (tens of thousands a second): a Struct, because a frozen
    dataclass's ``__init__`` costs several times more."""

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
    quantiles: Mapping[str, float] = msgspec.field(default_factory=dict)  # RollupStat.P95 -> value
    origin: bytes | None = None  # traceparent of the record that opened the window, as sent
    # Stats that were beyond float64 (saturated) or not a number (dropped) at close.
    out_of_range: tuple[tuple[str, OutOfRange], ...] = ()

    @property
    def size(self) -> float:
        return self.end - self.start

    @property
    def value(self) -> float:
        """The headline value rules compare: rate for counters, last for gauges, mean otherwise."""
        if self.kind is MetricKind.COUNTER:
            # A saturated increase over a window shorter than a second would overflow.
            return saturate(self.increase / (self.end - self.start))
        if self.kind is MetricKind.GAUGE:
            return self.last
        return self.total / self.count if self.count else 0.0

    def stats(self) -> dict[str, float]:
        """The stats the catalogue declares for the window's metric kind (``ROLLUPS``)."""
        out: dict[str, float] = {
            RollupStat.COUNT: float(self.count),
            RollupStat.SUM: self.total,
            RollupStat.MIN: self.minimum,
            RollupStat.MAX: self.maximum,
            RollupStat.LAST: self.last,
            RollupStat.MEAN: self.total / self.count if self.count else 0.0,
        }
        if self.kind is MetricKind.COUNTER:
            out[RollupStat.INCREASE] = self.increase
            out[RollupStat.RATE] = self.value
        out.update(self.quantiles)
        return out
