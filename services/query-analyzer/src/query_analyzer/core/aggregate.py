"""Per-fingerprint, per-window aggregation of one batch, so storage takes one row per key."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from query_analyzer.core.fingerprint import Fingerprint
from query_analyzer.core.sketch import INV_LOG_GAMMA, MIN_VALUE, Sketch

_MAX_SAMPLE = 10_000


@dataclass(slots=True)
class QueryAggregate:
    fingerprint: Fingerprint
    database: str
    window_start: float = 0.0
    calls: int = 0
    total_ms: float = 0.0
    min_ms: float = math.inf
    max_ms: float = 0.0
    rows: int = 0
    last_seen: float = 0.0
    sample_sql: str = ""
    sketch: Sketch = field(default_factory=Sketch)

    def add(self, duration_ms: float, rows: int | None, started_at: float, sql: str) -> None:
        self.calls += 1
        self.total_ms += duration_ms
        if duration_ms < self.min_ms:  # noqa: PLR1730 - hot path: a branch beats a call
            self.min_ms = duration_ms
        if duration_ms >= self.max_ms:
            # The slowest call's real text: it is what EXPLAIN and index advice plan.
            self.max_ms = duration_ms
            self.sample_sql = sql[:_MAX_SAMPLE]
        if rows:
            self.rows += rows
        if started_at > self.last_seen:  # noqa: PLR1730
            self.last_seen = started_at
        # Sketch.add, inlined: this runs once per event on the consumer's hot path.
        sketch = self.sketch
        sketch.count += 1
        if duration_ms <= MIN_VALUE:
            sketch.zeros += 1
        else:
            key = math.ceil(math.log(duration_ms) * INV_LOG_GAMMA)
            buckets = sketch.buckets
            buckets[key] = buckets.get(key, 0) + 1
