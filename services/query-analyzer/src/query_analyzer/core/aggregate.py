"""Per-fingerprint aggregation of one batch, so storage takes one row per fingerprint."""

from __future__ import annotations

import math
from dataclasses import dataclass

from opsmesh.events.queries import SlowQueryObserved
from query_analyzer.core.fingerprint import Fingerprint


@dataclass(slots=True)
class QueryAggregate:
    fingerprint: Fingerprint
    database: str
    calls: int = 0
    total_ms: float = 0.0
    min_ms: float = math.inf
    max_ms: float = 0.0
    rows: int = 0
    last_seen: float = 0.0
    sample_sql: str = ""

    def add(self, event: SlowQueryObserved) -> None:
        self.calls += 1
        self.total_ms += event.duration_ms
        self.min_ms = min(self.min_ms, event.duration_ms)
        if event.duration_ms >= self.max_ms:
            self.max_ms = event.duration_ms
            self.sample_sql = event.sql[:10_000]
        self.rows += event.rows or 0
        self.last_seen = max(self.last_seen, event.started_at)
