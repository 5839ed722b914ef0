"""The series limits as one replica sees them: per metric name, in all, and distinct
metric names — each refusal named, global refusals remembered as "limit reached" (not
per series), and everything asked again after the reap."""

from __future__ import annotations

from metrics_ingest.rollup.cardinality import SeriesLimit, SeriesLimits, SeriesRefusal
from metrics_ingest.rollup.windows import Rollups, SampleOutcome, WindowConfig
from opsmesh.events.metrics import MetricSampledFields

T0 = 1_700_000_000.0
P0 = ("opsmesh.metrics", 0)


def test_the_series_limit_counts_every_name() -> None:
    limit = SeriesLimit(SeriesLimits(series=3))
    assert [limit.admit(n, s) for n, s in [("a", "1"), ("b", "1"), ("b", "2")]] == [True] * 3
    assert not limit.admit("c", "1")
    assert limit.admit("a", "1"), "a held series is never refused"
    assert limit.take_refusals() == {SeriesRefusal.SERIES: 1}
    assert limit.take_rejected() == {}, "per-name counts are for the per-metric limit only"
    limit.release("b", "2")
    assert limit.admit("c", "1")
    assert (limit.total, limit.names) == (3, 3)


def test_the_metric_names_limit_refuses_new_names_only() -> None:
    limit = SeriesLimit(SeriesLimits(metric_names=2))
    assert limit.admit("a", "1")
    assert limit.admit("b", "1")
    assert not limit.admit("c", "1")
    assert limit.admit("b", "2"), "a held name takes new series"
    assert limit.take_refusals() == {SeriesRefusal.METRIC_NAMES: 1}
    limit.release("a", "1")
    assert limit.names == 1, "a name whose last series went is no longer counted"
    assert limit.admit("c", "1")


def test_the_per_metric_limit_is_named_and_counted_per_name() -> None:
    limit = SeriesLimit(SeriesLimits(per_metric=1, series=10, metric_names=10))
    assert limit.admit("cpu", "1")
    assert not limit.admit("cpu", "2")
    assert limit.take_refusals() == {SeriesRefusal.PER_METRIC: 1}
    assert limit.take_rejected() == {"cpu": 1}


def test_a_global_refusal_marks_the_limit_reached_until_the_reap() -> None:
    limit = SeriesLimit(SeriesLimits(series=100, metric_names=100))
    assert limit.admit("a", "1")
    assert limit.admit("b", "1")
    limit.refuse([("b", "1")], SeriesRefusal.METRIC_NAMES)  # other replicas hold the rest
    # Any new name is refused here at once, without asking and without remembering it.
    assert [limit.admit(f"flood{i}", "x") for i in range(1000)] == [False] * 1000
    assert limit.admit("a", "2"), "a name held here still takes new series"
    assert limit.unconfirmed() == [("a", "1"), ("a", "2")]
    limit.refuse([("a", "2")], SeriesRefusal.SERIES)
    assert not limit.admit("a", "3")
    assert limit.take_refusals() == {
        SeriesRefusal.METRIC_NAMES: 1000,
        SeriesRefusal.SERIES: 1,
    }
    limit.forgive()  # the reap: slots may have been freed
    assert limit.admit("flood0", "x")
    assert limit.admit("a", "3")


def _sample(name: str, host: str) -> MetricSampledFields:
    return MetricSampledFields(name=name, value=1.0, labels={"host": host}, sampled_at=T0)


def test_rollups_refuse_over_the_global_limits_and_count_by_reason() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0, max_series=3, max_metric_names=2))
    outcomes = [
        rollups.add(_sample(name, host), P0, offset)
        for offset, (name, host) in enumerate(
            [("a", "1"), ("b", "1"), ("c", "1"), ("b", "2"), ("b", "3"), ("a", "1")]
        )
    ]
    assert outcomes == [
        SampleOutcome.ACCEPTED,
        SampleOutcome.ACCEPTED,
        SampleOutcome.OVER_CARDINALITY,  # a third name
        SampleOutcome.ACCEPTED,
        SampleOutcome.OVER_CARDINALITY,  # a fourth series
        SampleOutcome.ACCEPTED,
    ]
    assert rollups.series_total == 3
    assert rollups.take_series_refusals() == {
        SeriesRefusal.METRIC_NAMES: 1,
        SeriesRefusal.SERIES: 1,
    }
    assert rollups.take_rejected_series() == {}


def test_a_series_refused_group_wide_for_a_global_limit_leaves_nothing() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0, max_series=10))
    rollups.add(_sample("a", "1"), P0, 0)
    rollups.add(_sample("a", "2"), P0, 1)
    second = rollups.unconfirmed_series()[1]
    rollups.refuse_series([second], SeriesRefusal.SERIES)
    rollups.confirm_series(rollups.unconfirmed_series())
    assert rollups.series_total == 1
    assert rollups.open_windows == 1
    assert rollups.take_series_refusals() == {SeriesRefusal.SERIES: 1}
    assert rollups.add(_sample("b", "1"), P0, 2) is SampleOutcome.OVER_CARDINALITY
