"""Resuming from a committed checkpoint, histogram quantiles, the cardinality guard."""

from __future__ import annotations

import math

import pytest

from metrics_ingest.rollup.checkpoint import Checkpoint
from metrics_ingest.rollup.closed import ClosedWindow
from metrics_ingest.rollup.histogram import bucket_quantile
from metrics_ingest.rollup.windows import Rollups, SampleOutcome, WindowConfig
from opsmesh.events.metrics import Bucket, MetricKind, MetricSampled
from opsmesh.labels import series_id

T0 = 1_700_000_400.0
P0: tuple[str, int] = ("metrics.samples", 0)


def gauge(at: float, value: float = 1.0, host: str = "a", name: str = "cpu") -> MetricSampled:
    return MetricSampled(name=name, value=value, labels={"host": host}, sampled_at=at)


def hist(at: float, counts: list[float], total: float) -> MetricSampled:
    bounds = [0.1, 0.5, 1.0]
    return MetricSampled(
        name="latency_seconds",
        kind=MetricKind.HISTOGRAM,
        value=0.0,
        labels={"host": "a"},
        sampled_at=at,
        buckets=[Bucket(le, c) for le, c in zip(bounds, counts, strict=True)],
        count=total,
    )


# -- checkpoint -------------------------------------------------------------------------


def test_checkpoint_round_trips_and_ignores_foreign_metadata() -> None:
    point = Checkpoint(1_700_000_412.5, 42)
    assert Checkpoint.decode(point.encode()) == point
    for foreign in ("", "hello", "v1;wm=x;to=1", "v2;wm=1;to=2", "v1;wm=1"):
        assert Checkpoint.decode(foreign) is None


def _crash_and_resume(stream: list[tuple[MetricSampled, float]]) -> tuple[dict, dict]:
    """Run the stream with a commit after every sample (offset = hold, metadata =
    checkpoint); crash after each prefix, replay from the commit, and return the final
    emitted windows of the uninterrupted run and of every crashed-and-resumed run."""

    def run(
        crash_at: int | None,
    ) -> dict[tuple[str, float], ClosedWindow]:
        emitted: dict[tuple[str, float], ClosedWindow] = {}
        rollups = Rollups(WindowConfig((1.0,), 0.5, 100.0))
        committed: tuple[int, Checkpoint | None] = (0, None)
        offset = 0
        while offset < len(stream):
            sample, now = stream[offset]
            rollups.add(sample, P0, offset)
            for w in rollups.close_due(now):
                emitted[(w.series, w.start)] = w
            hold = rollups.hold_from().get(P0, offset + 1)
            committed = (hold, rollups.checkpoints().get(P0))
            offset += 1
            if crash_at is not None and offset == crash_at:
                rollups = Rollups(WindowConfig((1.0,), 0.5, 100.0))
                offset, point = committed
                if point is not None:
                    rollups.resume(P0, point)
                crash_at = None
        for w in rollups.close_due(1e12):
            emitted[(w.series, w.start)] = w
        for w in rollups.close_due(2e12):
            emitted[(w.series, w.start)] = w
        return emitted

    clean = run(None)
    crashed = {n: run(n) for n in range(1, len(stream))}
    return clean, crashed


def test_a_crash_anywhere_replays_to_the_same_windows() -> None:
    # Two series on one partition with out-of-order samples inside the lateness: the
    # case where a replay from the hold offset holds only part of an emitted window.
    stream = []
    for i in range(40):
        at = T0 + i * 0.2 - (0.3 if i % 3 == 0 else 0.0)
        stream.append((gauge(at, float(i), host="a" if i % 2 else "b"), 0.0))
    clean, crashed = _crash_and_resume(stream)
    for crash_at, windows in crashed.items():
        got = {k: (w.count, w.total) for k, w in windows.items()}
        want = {k: (w.count, w.total) for k, w in clean.items()}
        assert got == want, f"crash after record {crash_at}"


def test_without_the_checkpoint_a_replay_re_forms_a_partial_window() -> None:
    """The gap the checkpoint closes: an emitted window re-formed from part of its input."""
    rollups = Rollups(WindowConfig((1.0,), 0.5, 100.0))
    rollups.add(gauge(T0 + 0.1, 1.0, "a"), P0, 0)
    rollups.add(gauge(T0 + 1.2, 2.0, "b"), P0, 1)
    rollups.add(gauge(T0 + 0.9, 3.0, "a"), P0, 2)  # out of order, within lateness
    rollups.add(gauge(T0 + 1.6, 4.0, "b"), P0, 3)
    (closed,) = rollups.close_due(0.0)
    assert (closed.start, closed.count) == (T0, 2)
    hold = rollups.hold_from()[P0]
    point = rollups.checkpoints()[P0]
    assert hold == 1

    naive = Rollups(WindowConfig((1.0,), 0.5, 100.0))
    for offset, s in [(1, gauge(T0 + 1.2, 2.0, "b")), (2, gauge(T0 + 0.9, 3.0, "a"))]:
        naive.add(s, P0, offset)
    naive.add(gauge(T0 + 1.6, 4.0, "b"), P0, 3)
    partial = [w for w in naive.close_due(0.0) if w.start == T0]
    assert [w.count for w in partial] == [1], "re-formed with 1 of its 2 samples"

    resumed = Rollups(WindowConfig((1.0,), 0.5, 100.0))
    resumed.resume(P0, point)
    assert resumed.add(gauge(T0 + 1.2, 2.0, "b"), P0, 1) is SampleOutcome.ACCEPTED
    assert resumed.add(gauge(T0 + 0.9, 3.0, "a"), P0, 2) is SampleOutcome.REPLAYED
    assert resumed.add(gauge(T0 + 1.6, 4.0, "b"), P0, 3) is SampleOutcome.ACCEPTED
    assert [w.start for w in resumed.close_due(0.0)] == []
    # Past the checkpoint's offset a sample behind the watermark is late, as before.
    assert resumed.add(gauge(T0 + 0.2, 5.0, "a"), P0, 4) is SampleOutcome.LATE


def test_checkpoints_only_for_partitions_with_a_watermark() -> None:
    rollups = Rollups(WindowConfig((1.0,), 0.5, 100.0))
    rollups.add(gauge(T0), P0, 7)
    assert rollups.checkpoints() == {}
    rollups.close_due(0.0)
    assert rollups.checkpoints() == {P0: Checkpoint(T0 - 0.5, 8)}


# -- histograms -------------------------------------------------------------------------


def test_bucket_quantile_interpolates_like_histogram_quantile() -> None:
    bounds = (0.1, 0.5, 1.0, math.inf)
    cumulative = [10.0, 60.0, 90.0, 100.0]
    assert bucket_quantile(0.05, bounds, cumulative) == pytest.approx(0.05)
    assert bucket_quantile(0.5, bounds, cumulative) == pytest.approx(0.1 + 0.4 * 40 / 50)
    assert bucket_quantile(0.99, bounds, cumulative) == 1.0, "+Inf answers the top bound"
    assert bucket_quantile(0.5, bounds, [0.0, 0.0, 0.0, 0.0]) is None
    assert bucket_quantile(0.5, (), []) is None


def test_window_quantiles_come_from_bucket_increases_across_a_reset() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0))
    rollups.add(hist(T0 + 1, [100, 100, 100], 100), P0, 0)  # baseline
    rollups.add(hist(T0 + 2, [110, 150, 190], 200), P0, 1)  # +10, +50, +90, +100
    rollups.add(hist(T0 + 3, [0, 0, 0], 0), P0, 2)  # a restart: counters reset
    rollups.add(hist(T0 + 4, [0, 0, 0], 0), P0, 3)
    rollups.add(hist(T0 + 12, [0, 0, 0], 0), P0, 4)
    (w,) = rollups.close_due(0.0)
    assert w.quantiles["p50"] == pytest.approx(0.1 + 0.4 * 40 / 40)
    assert w.quantiles["p90"] == pytest.approx(1.0)
    assert w.quantiles["p99"] == 1.0
    assert {"p50", "p90", "p99"} <= set(w.stats())


def test_a_single_histogram_sample_has_no_quantiles() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0))
    rollups.add(hist(T0 + 1, [1, 2, 3], 4), P0, 0)
    rollups.add(hist(T0 + 12, [1, 2, 3], 4), P0, 1)
    (w,) = rollups.close_due(0.0)
    assert w.quantiles == {}


# -- cardinality ------------------------------------------------------------------------


def test_new_series_beyond_the_limit_are_rejected_and_counted() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0, max_series_per_metric=2))
    outcomes = [rollups.add(gauge(T0, host=h), P0, i) for i, h in enumerate("abcac")]
    assert outcomes == [
        SampleOutcome.ACCEPTED,
        SampleOutcome.ACCEPTED,
        SampleOutcome.OVER_CARDINALITY,
        SampleOutcome.ACCEPTED,  # known series keep flowing
        SampleOutcome.OVER_CARDINALITY,
    ]
    assert rollups.add(gauge(T0, host="z", name="mem"), P0, 5) is SampleOutcome.ACCEPTED
    assert rollups.take_rejected_series() == {"cpu": 2}
    assert rollups.take_rejected_series() == {}
    assert rollups.series_count() == {"cpu": 2, "mem": 1}


def test_the_kafka_key_names_the_series_only_when_it_matches_the_sample() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0))
    key = series_id("cpu", {"host": "a"}).encode()
    rollups.add(gauge(T0 + 1, 1.0, "a"), P0, 0, key)
    rollups.add(gauge(T0 + 2, 2.0, "b"), P0, 1, key)  # mis-keyed: its own series
    rollups.add(gauge(T0 + 12, 0.0, "a"), P0, 2, key)
    closed = rollups.close_due(0.0)
    assert sorted((w.series, w.count) for w in closed) == [
        (series_id("cpu", {"host": "a"}), 1),
        (series_id("cpu", {"host": "b"}), 1),
    ]
    assert set(rollups.latest) == {w.series for w in closed}
    assert rollups.latest[series_id("cpu", {"host": "a"})].sampled_at == T0 + 12


def test_revoked_and_idle_series_free_their_slots() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0, max_series_per_metric=1))
    p1: tuple[str, int] = ("metrics.samples", 1)
    assert rollups.add(gauge(T0, host="a"), P0, 0) is SampleOutcome.ACCEPTED
    assert rollups.add(gauge(T0, host="b"), p1, 0) is SampleOutcome.OVER_CARDINALITY
    rollups.forget([P0])
    assert rollups.add(gauge(T0, host="b"), p1, 1) is SampleOutcome.ACCEPTED
    assert rollups.add(gauge(T0 + 20, host="b"), p1, 2) is SampleOutcome.ACCEPTED
    rollups.close_due(0.0)
    assert rollups.reap_idle(before=T0 + 20) == [], "an open window keeps its series"
    rollups.close_due(1e12)
    rollups.close_due(2e12)
    assert len(rollups.reap_idle(before=T0 + 21)) == 1
    assert rollups.series_count() == {}, "a name with no series left is forgotten"
    assert rollups.add(gauge(T0 + 30, host="c"), p1, 3) is not SampleOutcome.OVER_CARDINALITY


def test_a_series_refused_group_wide_leaves_no_window_and_is_rejected_until_the_reap() -> None:
    rollups = Rollups(WindowConfig((10.0, 60.0), 0.0, 0.0, max_series_per_metric=5))
    for offset, host in enumerate("abba"):
        rollups.add(gauge(T0 + offset, host=host), P0, offset)
    a, b = (("cpu", series_id("cpu", {"host": h})) for h in "ab")
    assert rollups.unconfirmed_series() == [a, b]
    assert rollups.hold_from() == {P0: 0}
    rollups.refuse_series([b])
    rollups.confirm_series([a, b])
    assert rollups.unconfirmed_series() == []
    assert rollups.take_rejected_series() == {"cpu": 2}, "b's two samples"
    assert rollups.open_windows == 2, "a's 10 s and 60 s windows"
    assert rollups.series_count() == {"cpu": 1}
    assert rollups.add(gauge(T0 + 5, host="b"), P0, 4) is SampleOutcome.OVER_CARDINALITY
    assert rollups.take_rejected_series() == {"cpu": 1}
    assert rollups.add(gauge(T0 + 70, host="a"), P0, 5) is SampleOutcome.ACCEPTED
    closed = rollups.close_due(0.0)
    assert {w.series for w in closed} == {a[1]}
    assert [w.count for w in closed if w.end - w.start == 10.0] == [2]
    rollups.reap_idle(before=T0)
    assert rollups.add(gauge(T0 + 71, host="b"), P0, 6) is SampleOutcome.ACCEPTED, "may ask again"
    assert rollups.unconfirmed_series() == [b]
