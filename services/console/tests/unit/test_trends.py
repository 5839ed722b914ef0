"""A fingerprint's trend: its p95 per bucket placed by time over the span (gaps stay
gaps), scaled from zero to the span's highest, and the change against the bucket just
before the latest."""

from __future__ import annotations

from typing import Any

import pytest

from console.core.trends import SPANS, Direction, series_of, span_of, trend_of

HOUR = 3600.0
BASE = 490_000 * HOUR  # an hour boundary


def bucket(hour: int, p95: float | None, calls: int = 10) -> dict[str, Any]:
    return {"start": BASE + hour * HOUR, "calls": calls, "p95_ms": p95}


def test_points_are_placed_by_time_with_the_newest_at_the_right_edge() -> None:
    trend = trend_of([bucket(0, 10.0), bucket(12, 40.0), bucket(23, 20.0)], span_of("1d"))
    xs = [p.x for p in trend.points]
    assert xs == pytest.approx([2.0, 2.0 + 116 * 12 / 23, 118.0])
    ys = [p.y for p in trend.points]
    assert ys[1] == pytest.approx(2.0)  # the highest p95 at the top
    assert ys[0] == pytest.approx(2.0 + 20 * 0.75)  # a quarter of it, three quarters down
    assert trend.polyline.startswith("2.0,17.0 ")
    assert trend.high_ms == 40.0


def test_the_change_is_against_the_bucket_right_before_the_latest() -> None:
    span = span_of("1d")
    slower = trend_of([bucket(0, 10.0), bucket(1, 15.0)], span)
    assert (slower.change, slower.direction) == (pytest.approx(0.5), Direction.UP)
    faster = trend_of([bucket(0, 10.0), bucket(1, 5.0)], span)
    assert (faster.change, faster.direction) == (pytest.approx(-0.5), Direction.DOWN)
    steady = trend_of([bucket(0, 10.0), bucket(1, 10.3)], span)
    assert steady.direction is Direction.STEADY
    # A gap before the latest bucket: nothing to compare with, not the older bucket.
    gap = trend_of([bucket(0, 10.0), bucket(5, 30.0)], span)
    assert (gap.change, gap.previous_ms, gap.direction) == (None, None, Direction.UNKNOWN)


def test_buckets_without_a_p95_or_older_than_the_span_are_left_out() -> None:
    span = span_of("1d")
    trend = trend_of([bucket(-30, 99.0), bucket(0, None), bucket(1, 8.0)], span)
    assert [p.p95_ms for p in trend.points] == [8.0]
    assert trend.last is not None
    assert trend.last.x == 118.0
    empty = trend_of([bucket(0, None)], span)
    assert (empty.points, empty.last, empty.change) == ((), None, None)


def test_rows_are_split_per_fingerprint_database_and_version_in_order() -> None:
    rows = [
        {"fingerprint": "a", "database": "shop", "fingerprint_version": "1", "start": 1},
        {"fingerprint": "a", "database": "shop", "fingerprint_version": "1", "start": 2},
        {"fingerprint": "a", "database": "crm", "fingerprint_version": "1", "start": 1},
    ]
    series = series_of(rows)
    assert [r["start"] for r in series[("a", "shop", "1")]] == [1, 2]
    assert list(series) == [("a", "shop", "1"), ("a", "crm", "1")]


def test_an_unknown_span_name_is_the_default_day() -> None:
    assert span_of("1y") is SPANS["1d"]
    assert span_of(None).step_s == 3600
    assert span_of("2h").buckets * span_of("2h").step_s == 2 * 3600
