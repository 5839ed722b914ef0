"""A mergeable quantile sketch with relative-error guarantees (the DDSketch algorithm).

Values land in logarithmic buckets ``ceil(log_gamma(v))`` with
``gamma = (1 + a) / (1 - a)``, so every quantile is returned within relative accuracy
``a`` of a true value, and two sketches merge by adding bucket counts. That is what lets
per-window sketches stored in PostgreSQL combine into any longer window exactly as if
the values had been sketched together. (Masson, Rim, Lee: "DDSketch", VLDB 2019.)
"""

from __future__ import annotations

import math
from typing import Any

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
INV_LOG_GAMMA = 1 / _LOG_GAMMA
# Durations below this (ms) share one bucket: sub-microsecond detail is noise here.
MIN_VALUE = 1e-3


class Sketch:
    __slots__ = ("buckets", "count", "zeros")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.zeros = 0

    def add(self, value: float) -> None:
        self.count += 1
        if value <= MIN_VALUE:
            self.zeros += 1
            return
        key = math.ceil(math.log(value) * INV_LOG_GAMMA)
        self.buckets[key] = self.buckets.get(key, 0) + 1

    def merge(self, other: Sketch) -> None:
        self.count += other.count
        self.zeros += other.zeros
        for key, n in other.buckets.items():
            self.buckets[key] = self.buckets.get(key, 0) + n

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), within the relative accuracy; None if empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = self.zeros
        if rank < seen:
            return 0.0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen > rank:
                # The bucket's midpoint in relative terms: 2 * gamma**k / (gamma + 1).
                return 2 * _GAMMA**key / (_GAMMA + 1)
        return 2 * _GAMMA ** max(self.buckets) / (_GAMMA + 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": RELATIVE_ACCURACY,
            "zeros": self.zeros,
            "buckets": {str(k): n for k, n in self.buckets.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sketch:
        if data.get("accuracy") != RELATIVE_ACCURACY:
            raise ValueError(f"sketch accuracy {data.get('accuracy')} != {RELATIVE_ACCURACY}")
        sketch = cls()
        sketch.zeros = int(data.get("zeros", 0))
        sketch.buckets = {int(k): int(n) for k, n in data.get("buckets", {}).items()}
        sketch.count = sketch.zeros + sum(sketch.buckets.values())
        return sketch
