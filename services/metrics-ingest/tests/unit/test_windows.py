"""Tumbling-window rollups: assignment, aggregates, watermark, lateness, offsets."""

from __future__ import annotations

import math

import pytest

from metrics_ingest.rollup.closed import ClosedWindow
from metrics_ingest.rollup.windows import Rollups, SampleOutcome, WindowConfig
from opsmesh.events.metrics import MetricKind, MetricSampled
from opsmesh.labels import series_id

T0 = 1_700_000_400.0  # a multiple of 10, 60 and 300
P0: tuple[str, int] = ("metrics.samples", 0)
P1: tuple[str, int] = ("metrics.samples", 1)


def sample(
    at: float,
    value: float = 1.0,
    *,
    name: str = "cpu",
    kind: MetricKind = MetricKind.GAUGE,
    **labels: str,
) -> MetricSampled:
    return MetricSampled(
        name=name, kind=kind, value=value, labels=labels or {"host": "a"}, sampled_at=at
    )


class Feed:
    """Rollups plus an offset counter per partition, so tests read as a stream."""

    def __init__(
        self, sizes: tuple[float, ...] = (10.0,), lateness: float = 5.0, idle: float = 5.0
    ) -> None:
        self.rollups = Rollups(WindowConfig(sizes, lateness, idle))
        self.idle = idle
        self.next_offset: dict[tuple[str, int], int] = {}

    def add(self, s: MetricSampled, partition: tuple[str, int] = P0) -> SampleOutcome:
        offset = self.next_offset.get(partition, 0)
        self.next_offset[partition] = offset + 1
        return self.rollups.add(s, partition, offset)

    def close(self, now: float = 0.0) -> list[ClosedWindow]:
        # now=0: the wall clock is far behind, so only event time moves the watermark
        return self.rollups.close_due(now)

    def flush(self, now: float) -> list[ClosedWindow]:
        """Close at ``now`` and again after an idle grace with no arrivals: input went quiet."""
        return self.rollups.close_due(now) + self.rollups.close_due(now + self.idle)


def quiet(rollups: Rollups, now: float, grace: float = 5.0) -> list[ClosedWindow]:
    """Close at ``now``, then again once input has been quiet for the idle grace."""
    return rollups.close_due(now) + rollups.close_due(now + grace)


def test_config_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="positive"):
        Rollups(WindowConfig(sizes_s=()))
    with pytest.raises(ValueError, match="positive"):
        Rollups(WindowConfig(sizes_s=(10.0, 0.0)))


@pytest.mark.parametrize(
    ("size", "at", "start"),
    [
        (10.0, T0, T0),
        (10.0, T0 + 9.999, T0),
        (10.0, T0 + 10, T0 + 10),
        (60.0, T0 + 59, T0),
        (60.0, T0 + 61, T0 + 60),
        (300.0, T0 + 299, T0),
        (300.0, T0 + 300, T0 + 300),
        (15.0, 100.0, 90.0),
        (15.0, 105.0, 105.0),
    ],
)
def test_tumbling_window_assignment(size: float, at: float, start: float) -> None:
    feed = Feed(sizes=(size,), lateness=0.0)
    feed.add(sample(at))
    (closed,) = feed.flush(now=at + 10 * size)
    assert (closed.start, closed.end) == (start, start + size)


def test_one_sample_lands_in_a_window_of_every_size() -> None:
    feed = Feed(sizes=(10.0, 60.0), lateness=0.0)
    feed.add(sample(T0 + 15))
    assert feed.rollups.open_windows == 2
    closed = feed.flush(now=T0 + 1000)
    assert sorted((w.start, w.end) for w in closed) == [(T0, T0 + 60), (T0 + 10, T0 + 20)]


def test_series_are_windowed_separately() -> None:
    feed = Feed()
    feed.add(sample(T0, 1.0, host="a"))
    feed.add(sample(T0, 2.0, host="b"))
    feed.add(sample(T0, 3.0, name="mem", host="a"))
    closed = feed.flush(now=T0 + 100)
    by_series = {w.series: w.total for w in closed}
    assert by_series == {
        series_id("cpu", {"host": "a"}): 1.0,
        series_id("cpu", {"host": "b"}): 2.0,
        series_id("mem", {"host": "a"}): 3.0,
    }


def test_count_sum_min_max_last() -> None:
    feed = Feed()
    for offset_s, value in [(1, 4.0), (2, 9.0), (3, -2.0), (4, 5.0)]:
        feed.add(sample(T0 + offset_s, value))
    (w,) = feed.flush(now=T0 + 100)
    assert (w.count, w.total, w.minimum, w.maximum, w.last) == (4, 16.0, -2.0, 9.0, 5.0)
    assert w.stats() == {
        "count": 4.0,
        "sum": 16.0,
        "min": -2.0,
        "max": 9.0,
        "last": 5.0,
        "mean": 4.0,
    }
    assert (w.name, w.kind, dict(w.labels)) == ("cpu", MetricKind.GAUGE, {"host": "a"})


def test_last_is_by_event_time_not_arrival() -> None:
    feed = Feed()
    feed.add(sample(T0 + 5, 50.0))
    feed.add(sample(T0 + 2, 20.0))  # older, arrives later
    (w,) = feed.flush(now=T0 + 100)
    assert w.last == 50.0


def test_gauge_value_is_last() -> None:
    feed = Feed()
    feed.add(sample(T0 + 1, 3.0))
    feed.add(sample(T0 + 2, 7.0))
    (w,) = feed.flush(now=T0 + 100)
    assert w.value == 7.0
    assert "rate" not in w.stats()


def test_counter_increase_and_rate() -> None:
    feed = Feed()
    for offset_s, value in [(0, 100.0), (3, 130.0), (6, 160.0)]:
        feed.add(sample(T0 + offset_s, value, kind=MetricKind.COUNTER))
    (w,) = feed.flush(now=T0 + 100)
    assert w.increase == 60.0
    assert w.value == pytest.approx(6.0)  # 60 over a 10s window
    assert w.stats()["increase"] == 60.0
    assert w.stats()["rate"] == pytest.approx(6.0)


def test_counter_increase_across_a_reset() -> None:
    feed = Feed()
    # 100 → 150 (+50), restart to 10 (+10: the counter counted from 0), → 25 (+15)
    for offset_s, value in [(0, 100.0), (2, 150.0), (4, 10.0), (6, 25.0)]:
        feed.add(sample(T0 + offset_s, value, kind=MetricKind.COUNTER))
    (w,) = feed.flush(now=T0 + 100)
    assert w.increase == 75.0
    assert w.value == pytest.approx(7.5)


def test_counter_ignores_out_of_order_samples_for_increase() -> None:
    feed = Feed()
    feed.add(sample(T0 + 1, 10.0, kind=MetricKind.COUNTER))
    feed.add(sample(T0 + 5, 50.0, kind=MetricKind.COUNTER))
    feed.add(sample(T0 + 3, 30.0, kind=MetricKind.COUNTER))  # older: not a reset
    (w,) = feed.flush(now=T0 + 100)
    assert w.increase == 40.0


def test_histogram_value_is_the_mean() -> None:
    feed = Feed()
    feed.add(sample(T0 + 1, 2.0, kind=MetricKind.HISTOGRAM))
    feed.add(sample(T0 + 2, 4.0, kind=MetricKind.HISTOGRAM))
    (w,) = feed.flush(now=T0 + 100)
    assert w.value == 3.0


# -- watermark -----------------------------------------------------------------------------


def test_watermark_is_newest_event_time_minus_lateness() -> None:
    feed = Feed(lateness=5.0)
    assert feed.rollups.watermark(P0) == -math.inf
    feed.add(sample(T0 + 3))
    feed.add(sample(T0 + 12))
    feed.add(sample(T0 + 7))  # an older sample does not move it back
    feed.close()
    assert feed.rollups.watermark(P0) == T0 + 7


def test_window_closes_when_watermark_passes_its_end() -> None:
    feed = Feed(lateness=5.0)
    feed.add(sample(T0 + 1))
    feed.add(sample(T0 + 14.9))  # watermark T0 + 9.9
    assert feed.close() == []
    feed.add(sample(T0 + 15))  # watermark T0 + 10 = end of [T0, T0 + 10)
    (closed,) = feed.close()
    assert (closed.start, closed.end, closed.count) == (T0, T0 + 10, 1)
    assert feed.rollups.open_windows == 1


def test_sample_within_allowed_lateness_is_accepted() -> None:
    feed = Feed(lateness=5.0)
    feed.add(sample(T0 + 1, 1.0))
    feed.add(sample(T0 + 14))  # watermark T0 + 9: [T0, T0 + 10) still open
    feed.close()
    assert feed.add(sample(T0 + 9, 2.0)) is SampleOutcome.ACCEPTED
    feed.add(sample(T0 + 20))
    first = feed.close()[0]
    assert (first.start, first.count, first.total) == (T0, 2, 3.0)


def test_late_sample_is_dropped() -> None:
    feed = Feed(lateness=5.0)
    feed.add(sample(T0 + 1, 1.0))
    feed.add(sample(T0 + 16))
    (closed,) = feed.close()
    assert closed.start == T0
    assert feed.add(sample(T0 + 9, 100.0)) is SampleOutcome.LATE
    assert feed.rollups.open_windows == 1  # no window reopened for it
    feed.add(sample(T0 + 40))
    assert [w.start for w in feed.close()] == [T0 + 10]


def test_late_for_the_small_window_but_not_the_large_one_is_accepted() -> None:
    feed = Feed(sizes=(10.0, 60.0), lateness=0.0)
    feed.add(sample(T0 + 30))
    assert feed.close() == []  # watermark T0 + 30; nothing was open before it
    # [T0, T0 + 10) is behind the watermark, [T0, T0 + 60) is not.
    assert feed.add(sample(T0 + 5, 9.0)) is SampleOutcome.ACCEPTED
    closed = feed.flush(now=T0 + 1000)
    assert sorted((w.start, w.end, w.count, w.total) for w in closed) == [
        (T0, T0 + 60, 2, 10.0),
        (T0 + 30, T0 + 40, 1, 1.0),
    ]


def test_idle_close_is_driven_by_now_once_a_partition_is_quiet() -> None:
    feed = Feed(lateness=5.0, idle=5.0)
    feed.add(sample(T0 + 1))
    assert feed.close(now=T0 + 15) == []  # the sample arrived now: not idle
    assert feed.close(now=T0 + 19.9) == []  # quiet 4.9 s < grace
    assert feed.rollups.open_windows == 1
    (closed,) = feed.close(now=T0 + 20)  # quiet 5 s: watermark now - lateness - grace
    assert closed.end == T0 + 10
    assert feed.rollups.watermark(P0) == T0 + 10


def test_a_replaying_partition_is_not_idle_so_old_samples_are_not_late() -> None:
    feed = Feed(lateness=5.0, idle=5.0)
    live = T0 + 10_000
    feed.add(sample(live), P1)
    feed.close(now=live)
    feed.close(now=live + 60)  # P1 quiet: its watermark follows the wall clock
    # P0 is replayed from its last commit after a restart: hours old, yet not late.
    closed = []
    for i in range(30):
        assert feed.add(sample(T0 + i), P0) is SampleOutcome.ACCEPTED
        closed += feed.close(now=live + 60 + i * 0.2)
    assert feed.rollups.watermark(P0) == T0 + 29 - 5
    assert [(w.end, w.count) for w in closed] == [(T0 + 10, 10), (T0 + 20, 10)]
    assert feed.add(sample(T0 + 5), P1) is SampleOutcome.LATE, "P1's clock is its own"


def test_a_partition_not_read_to_its_end_is_not_idle_however_long_it_is_quiet() -> None:
    feed = Feed(lateness=5.0, idle=5.0)
    feed.add(sample(T0 + 1))
    feed.add(sample(T0 + 1), P1)
    feed.rollups.close_due(T0 + 2)
    # A minute without arrivals: P0's samples wait on the broker (the consumer is stalled
    # or catching up), P1 has none.
    closed = feed.rollups.close_due(T0 + 62, lagging={P0})
    assert [w.series for w in closed] == [series_id("cpu", {"host": "a"})]
    assert feed.rollups.watermark(P0) == T0 + 1 - 5, "event time only"
    assert feed.rollups.watermark(P1) == T0 + 62 - 10
    # The samples that waited are not late once they are read.
    assert feed.add(sample(T0 + 30)) is SampleOutcome.ACCEPTED
    (window,) = feed.rollups.close_due(T0 + 63, lagging={P0})
    assert (window.start, window.count) == (T0, 1)


def test_watermark_never_moves_back() -> None:
    feed = Feed()
    feed.add(sample(T0 + 100))
    feed.flush(now=T0 + 495)
    assert feed.rollups.watermark(P0) == T0 + 490
    feed.close(now=T0 + 200)
    assert feed.rollups.watermark(P0) == T0 + 490


def test_closed_windows_are_ordered_by_end_then_series() -> None:
    feed = Feed(lateness=0.0)
    feed.add(sample(T0 + 25, host="b"))
    feed.add(sample(T0 + 5, host="b"))
    feed.add(sample(T0 + 5, host="a"))
    closed = feed.flush(now=T0 + 1000)
    assert [(w.end, w.labels["host"]) for w in closed] == [
        (T0 + 10, "a"),
        (T0 + 10, "b"),
        (T0 + 30, "b"),
    ]


# -- offsets ----------------------------------------------------------------------------


def test_duplicate_offsets_are_skipped() -> None:
    rollups = Rollups(WindowConfig((10.0,), 5.0, 5.0))
    assert rollups.add(sample(T0 + 1, 1.0), P0, 0) is SampleOutcome.ACCEPTED
    assert rollups.add(sample(T0 + 2, 2.0), P0, 1) is SampleOutcome.ACCEPTED
    # A retried batch replays offsets 0 and 1, then continues.
    assert rollups.add(sample(T0 + 1, 1.0), P0, 0) is SampleOutcome.DUPLICATE
    assert rollups.add(sample(T0 + 2, 2.0), P0, 1) is SampleOutcome.DUPLICATE
    assert rollups.add(sample(T0 + 3, 3.0), P0, 2) is SampleOutcome.ACCEPTED
    # Offsets are per partition.
    assert rollups.add(sample(T0 + 4, 4.0), P1, 0) is SampleOutcome.ACCEPTED
    closed = quiet(rollups, T0 + 100)
    assert sorted((w.count, w.total) for w in closed) == [(1, 4.0), (3, 6.0)], (
        "windows are per partition: producers key a series to one partition"
    )


def test_hold_from_is_the_lowest_offset_of_open_windows_per_partition() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0))
    assert rollups.hold_from() == {}
    rollups.add(sample(T0 + 1, host="a"), P0, 5)
    rollups.add(sample(T0 + 2, host="b"), P0, 6)
    rollups.add(sample(T0 + 12, host="a"), P0, 7)
    rollups.add(sample(T0 + 3, host="c"), P1, 40)
    rollups.add(sample(T0 + 13, host="c"), P1, 41)
    assert rollups.hold_from() == {P0: 5, P1: 40}

    rollups.close_due(T0 + 10)  # closes [T0, T0 + 10) for a, b and c
    assert rollups.hold_from() == {P0: 7, P1: 41}

    rollups.close_due(T0 + 20)
    assert rollups.hold_from() == {}


def test_late_samples_do_not_hold_offsets() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0))
    rollups.add(sample(T0 + 12), P0, 0)
    rollups.close_due(T0 + 10)
    assert rollups.add(sample(T0 + 1), P0, 1) is SampleOutcome.LATE
    assert rollups.hold_from() == {P0: 0}


def test_forget_drops_state_of_revoked_partitions() -> None:
    rollups = Rollups(WindowConfig((10.0,), 5.0, 5.0))
    rollups.add(sample(T0 + 1, host="a"), P0, 10)
    rollups.add(sample(T0 + 1, host="b"), P1, 20)
    rollups.forget([P0])
    assert rollups.open_windows == 1
    assert rollups.hold_from() == {P1: 20}
    # The partition's offsets are forgotten too: if it comes back, replay is accepted.
    assert rollups.add(sample(T0 + 1, host="a"), P0, 10) is SampleOutcome.ACCEPTED
    # The kept partition still skips duplicates.
    assert rollups.add(sample(T0 + 1, host="b"), P1, 20) is SampleOutcome.DUPLICATE
    closed = quiet(rollups, T0 + 100)
    assert sorted((w.labels["host"], w.count) for w in closed) == [("a", 1), ("b", 1)]


def test_forget_unknown_partition_is_harmless() -> None:
    rollups = Rollups(WindowConfig((10.0,), 5.0, 5.0))
    rollups.add(sample(T0 + 1), P0, 0)
    rollups.forget([P1])
    assert rollups.open_windows == 1
    assert rollups.hold_from() == {P0: 0}
