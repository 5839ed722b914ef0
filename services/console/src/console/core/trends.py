"""A query fingerprint's trend: its p95 per bucket as a sparkline drawn on the server (an
inline SVG, no script), and the change of the latest bucket against the one before.

The buckets are query-analyzer's ``GET /api/v1/queries/windows`` rows (windows summed
into buckets of ``step_s``, percentiles from their merged sketches); a bucket without
calls is absent there and leaves a gap here, so the line's x axis is time, not rank.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SeriesKey = tuple[str, str, str]  # fingerprint, database, fingerprint version
# A change smaller than this either way reads as steady: sketches are ~1 % accurate.
STEADY = 0.05


@dataclass(frozen=True, slots=True)
class Span:
    """How far back a trend looks: ``buckets`` buckets of ``step_s`` seconds."""

    name: str
    label: str
    step_s: int
    buckets: int
    bucket_label: str


SPANS = {
    s.name: s
    for s in (
        Span("2h", "last 2 hours", 300, 24, "5 minutes"),
        Span("1d", "last day", 3600, 24, "hour"),
        Span("7d", "last week", 6 * 3600, 28, "6 hours"),
    )
}
DEFAULT_SPAN = "1d"


def span_of(name: str | None) -> Span:
    return SPANS.get(name or DEFAULT_SPAN, SPANS[DEFAULT_SPAN])


class Direction(enum.StrEnum):
    UP = "up"  # slower: worse
    DOWN = "down"
    STEADY = "steady"
    UNKNOWN = "unknown"  # no bucket right before the latest to compare with


@dataclass(frozen=True, slots=True)
class Point:
    start: float
    p95_ms: float
    calls: int
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Trend:
    points: tuple[Point, ...]  # oldest first; buckets without a p95 are left out
    width: int
    height: int
    latest_ms: float | None
    previous_ms: float | None  # the bucket just before the latest one, if it had calls
    direction: Direction

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def last(self) -> Point | None:
        return self.points[-1] if self.points else None

    @property
    def change(self) -> float | None:
        """The latest bucket's p95 against the one before, as a fraction (+0.5: 50 % slower)."""
        if self.latest_ms is None or not self.previous_ms:
            return None
        return self.latest_ms / self.previous_ms - 1.0

    @property
    def high_ms(self) -> float:
        return max((p.p95_ms for p in self.points), default=0.0)


def series_of(rows: Iterable[Mapping[str, Any]]) -> dict[SeriesKey, list[Mapping[str, Any]]]:
    """The windows endpoint's rows, per series, in the order given (oldest first)."""
    out: dict[SeriesKey, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (str(row["fingerprint"]), str(row["database"]), str(row["fingerprint_version"]))
        out.setdefault(key, []).append(row)
    return out


def trend_of(
    buckets: Sequence[Mapping[str, Any]],
    span: Span,
    *,
    width: int = 120,
    height: int = 24,
    pad: float = 2.0,
) -> Trend:
    """The sparkline of one series: x by bucket start over the span (ending at the series'
    newest bucket), y by p95 from zero (the bottom) to the span's highest p95 (the top)."""
    rows = [b for b in buckets if b.get("p95_ms") is not None]
    if not rows:
        return Trend((), width, height, None, None, Direction.UNKNOWN)
    step = float(span.step_s)
    last_start = float(rows[-1]["start"])
    first_start = last_start - step * (span.buckets - 1)
    rows = [b for b in rows if float(b["start"]) >= first_start]
    high = max(float(b["p95_ms"]) for b in rows) or 1.0
    usable_w, usable_h = width - 2 * pad, height - 2 * pad
    points = tuple(
        Point(
            start=float(b["start"]),
            p95_ms=float(b["p95_ms"]),
            calls=int(b["calls"]),
            x=pad + usable_w * ((float(b["start"]) - first_start) / (step * (span.buckets - 1)))
            if span.buckets > 1
            else width / 2,
            y=pad + usable_h * (1.0 - float(b["p95_ms"]) / high),
        )
        for b in rows
    )
    latest = points[-1].p95_ms
    before = [p for p in points[:-1] if p.start == points[-1].start - step]
    previous = before[0].p95_ms if before else None
    return Trend(points, width, height, latest, previous, _direction(latest, previous))


def _direction(latest: float, previous: float | None) -> Direction:
    if not previous:
        return Direction.UNKNOWN
    change = latest / previous - 1.0
    if change > STEADY:
        return Direction.UP
    if change < -STEADY:
        return Direction.DOWN
    return Direction.STEADY
