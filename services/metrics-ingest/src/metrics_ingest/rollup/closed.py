"""A closed window: the aggregates of one series over one ``[start, end)``."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from opsmesh.catalogue import RollupStat
from opsmesh.events.metrics import MetricKind


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

    @property
    def size(self) -> float:
        return self.end - self.start

    @property
    def value(self) -> float:
        """The headline value rules compare: rate for counters, last for gauges, mean otherwise."""
        if self.kind is MetricKind.COUNTER:
            return self.increase / (self.end - self.start)
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
