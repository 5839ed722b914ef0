"""A mergeable quantile sketch with relative-error guarantees (the DDSketch algorithm).

Values land in logarithmic buckets ``ceil(log_gamma(v))`` with
``gamma = (1 + a) / (1 - a)``, so every quantile is returned within relative accuracy
``a`` of a true value, and two sketches merge by adding bucket counts. That is what lets
per-window sketches stored in PostgreSQL combine into any longer window exactly as if
the values had been sketched together. (Masson, Rim, Lee: "DDSketch", VLDB 2019.)
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import msgspec

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
INV_LOG_GAMMA = 1 / _LOG_GAMMA
# Durations below this (ms) share one bucket: sub-microsecond detail is noise here.
MIN_VALUE = 1e-3


# A stored sketch can hold at most this many buckets: with 1 % accuracy, 1 µs .. 10^9 ms
# span ~1,000 keys, so more is not a sketch this code wrote.
MAX_BUCKETS = 4096


class SketchFormatError(ValueError):
    """A stored sketch this code cannot read (another accuracy, a hand-edited or damaged row)."""


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

    def to_json_bytes(self) -> bytes:
        """``to_json`` encoded (msgspec writes the integer keys as strings): what the
        statistics consumer stores for every window it touches."""
        return _encode(_Stored(RELATIVE_ACCURACY, self.zeros, self.buckets))

    @classmethod
    def from_json(cls, data: Any) -> Sketch:
        """Read a stored sketch; anything but what ``to_json`` writes is a SketchFormatError."""
        if isinstance(data, str | bytes):
            # The consumer reads every window it merges into: JSON text straight into typed
            # buckets. msgspec is stricter than the checks below (no "+1" keys, no big
            # ints), so what it refuses is read again by them, for their answer.
            try:
                stored = _decode(data)
            except msgspec.MsgspecError:
                stored = None
            if stored is not None and stored.accuracy == RELATIVE_ACCURACY:
                sketch = cls()
                sketch.zeros = stored.zeros
                sketch.buckets = stored.buckets
                sketch.count = stored.zeros + sum(stored.buckets.values())
                return sketch
            try:
                data = json.loads(data)
            except ValueError:
                raise SketchFormatError("sketch is not JSON") from None
        if not isinstance(data, dict):
            raise SketchFormatError(f"sketch must be an object, not {type(data).__name__}")
        if data.get("accuracy") != RELATIVE_ACCURACY:
            raise SketchFormatError(
                f"sketch accuracy {data.get('accuracy')!r} != {RELATIVE_ACCURACY}"
            )
        zeros, buckets = data.get("zeros", 0), data.get("buckets", {})
        if not _is_count(zeros) or not isinstance(buckets, dict) or len(buckets) > MAX_BUCKETS:
            raise SketchFormatError("sketch zeros/buckets malformed")
        sketch = cls()
        sketch.zeros = zeros
        for key, n in buckets.items():
            try:
                index = int(key)
            except ValueError:
                raise SketchFormatError(f"sketch bucket key {key!r} is not an integer") from None
            if not _is_count(n) or abs(index) > MAX_BUCKET_INDEX:
                raise SketchFormatError(f"sketch bucket {key!r} malformed")
            sketch.buckets[index] = n
        sketch.count = sketch.zeros + sum(sketch.buckets.values())
        return sketch


# |log_gamma(v)| for v within 1e-295 .. 1e295 stays below this: larger keys overflow floats.
MAX_BUCKET_INDEX = 34_000


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_Count = Annotated[int, msgspec.Meta(ge=0)]
_Index = Annotated[int, msgspec.Meta(ge=-MAX_BUCKET_INDEX, le=MAX_BUCKET_INDEX)]


class _Stored(msgspec.Struct):
    """The JSON form of a sketch, as msgspec reads and writes it."""

    accuracy: float
    zeros: _Count = 0
    buckets: Annotated[dict[_Index, _Count], msgspec.Meta(max_length=MAX_BUCKETS)] = {}


_decode = msgspec.json.Decoder(_Stored).decode
_encode = msgspec.json.Encoder().encode
