"""Pure cores behind the HTTP endpoints: batch validation, exposition, series queries,
and the day-partition retention plan."""

from __future__ import annotations

import datetime as dt
import math

import msgspec
import pytest

from metrics_ingest.rollup.exposition import render
from metrics_ingest.rollup.ingest import (
    BadBody,
    BodyError,
    IngestLimits,
    RejectReason,
    parse_batch,
)
from metrics_ingest.rollup.query import BadQuery, QueryError, parse_query
from metrics_ingest.rollup.retention import (
    RetentionPolicy,
    day_of,
    is_retained,
    parse_partition_name,
    partition_name,
    plan,
)
from opsmesh.events.metrics import Bucket, MetricKind, MetricSampled

NOW = 1_790_000_000.0
LIMITS = IngestLimits(max_samples=100, max_future_s=60, max_age_s=3600)


def body(*samples: dict) -> bytes:
    return msgspec.json.encode({"samples": list(samples)})


# -- ingest ----------------------------------------------------------------------------


def test_valid_samples_of_each_kind_are_accepted() -> None:
    parsed = parse_batch(
        body(
            {"name": "cpu", "value": 0.5, "labels": {"host": "a"}, "sampled_at": NOW - 1},
            {"name": "reqs_total", "kind": "counter", "value": 10, "timestamp": NOW},
            {
                "name": "lat",
                "kind": "histogram",
                "value": 12.5,
                "buckets": [
                    {"le": 0.1, "count": 3},
                    {"le": 1, "count": 9},
                    {"le": None, "count": 10},
                ],
            },
        ),
        NOW,
        LIMITS,
    )
    assert parsed.rejected == []
    gauge, counter, hist = parsed.samples
    assert (gauge.kind, gauge.sampled_at) == (MetricKind.GAUGE, NOW - 1)
    assert (counter.kind, counter.sampled_at) == (MetricKind.COUNTER, NOW)
    assert hist.sampled_at == NOW, "no timestamp: the receive time"
    assert hist.buckets == [Bucket(0.1, 3), Bucket(1.0, 9)]
    assert hist.count == 10, "the +Inf bucket is the count"


@pytest.mark.parametrize("inf", [None, "+Inf", "inf", "Inf"])
def test_plus_inf_is_accepted_in_its_spellings(inf: object) -> None:
    sample = {
        "name": "lat",
        "kind": "histogram",
        "value": 1.0,
        "buckets": [{"le": 1, "count": 1}, {"le": inf, "count": 2}],
    }
    (hist,) = parse_batch(body(sample), NOW, LIMITS).samples
    assert hist.count == 2


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        ({"name": "bad name", "value": 1}, RejectReason.SCHEMA_VIOLATION),
        ({"name": "x", "value": "high"}, RejectReason.SCHEMA_VIOLATION),
        ({"name": "x", "value": 1, "extra": 1}, RejectReason.SCHEMA_VIOLATION),
        ({"name": "x", "value": 1, "labels": {"bad-label": "v"}}, RejectReason.SCHEMA_VIOLATION),
        ({"name": "x", "kind": "summary", "value": 1}, RejectReason.SCHEMA_VIOLATION),
        ({"name": "x", "kind": "counter", "value": -1}, RejectReason.NEGATIVE_COUNTER),
        ({"name": "x", "value": 1, "sampled_at": NOW + 3600}, RejectReason.TOO_FAR_IN_FUTURE),
        ({"name": "x", "value": 1, "sampled_at": NOW - 7200}, RejectReason.TOO_OLD),
        ({"name": "x", "kind": "histogram", "value": 1}, RejectReason.MISSING_BUCKETS),
        (
            {"name": "x", "value": 1, "buckets": [{"le": 1, "count": 1}]},
            RejectReason.BUCKETS_ON_NON_HISTOGRAM,
        ),
        (
            {
                "name": "x",
                "kind": "histogram",
                "value": 1,
                "buckets": [{"le": 1, "count": 5}, {"le": 2, "count": 4}],
            },
            RejectReason.BAD_BUCKETS,
        ),
        (
            {
                "name": "x",
                "kind": "histogram",
                "value": 1,
                "buckets": [{"le": 2, "count": 1}, {"le": 1, "count": 1}],
            },
            RejectReason.BAD_BUCKETS,
        ),
        (
            {"name": "x", "kind": "histogram", "value": 1, "buckets": [{"le": "lots", "count": 1}]},
            RejectReason.BAD_BUCKETS,
        ),
        (
            {
                "name": "x",
                "kind": "histogram",
                "value": 1,
                "count": 3,
                "buckets": [{"le": 1, "count": 1}, {"le": "+Inf", "count": 2}],
            },
            RejectReason.BAD_BUCKETS,
        ),
    ],
)
def test_each_bad_sample_is_rejected_with_its_reason(sample: dict, reason: RejectReason) -> None:
    good = {"name": "ok", "value": 1}
    parsed = parse_batch(body(good, sample, good), NOW, LIMITS)
    assert len(parsed.samples) == 2, "the good ones around it still go in"
    (rejected,) = parsed.rejected
    assert (rejected.index, rejected.reason) == (1, reason)
    assert rejected.detail


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"samples": [', BodyError.INVALID_JSON),
        (b"[]", BodyError.NOT_A_BATCH),
        (b'{"samples": 3}', BodyError.NOT_A_BATCH),
        (body(*[{"name": "x", "value": 1}] * 101), BodyError.TOO_MANY_SAMPLES),
    ],
)
def test_an_unusable_body_is_refused_whole(raw: bytes, reason: BodyError) -> None:
    with pytest.raises(BadBody) as caught:
        parse_batch(raw, NOW, LIMITS)
    assert caught.value.reason is reason


# -- exposition -------------------------------------------------------------------------


def test_exposition_of_latest_values() -> None:
    text = render(
        [
            MetricSampled(name="cpu", value=0.25, labels={"host": "b"}, sampled_at=1),
            MetricSampled(name="cpu", value=1.0, labels={"host": "a"}, sampled_at=1),
            MetricSampled(name="reqs", kind=MetricKind.COUNTER, value=7, labels={}, sampled_at=1),
            MetricSampled(
                name="lat",
                kind=MetricKind.HISTOGRAM,
                value=2.5,
                labels={"path": 'a"b'},
                sampled_at=1,
                buckets=[Bucket(0.5, 1), Bucket(math.inf, 3)],
                count=3,
            ),
        ]
    )
    assert text.splitlines() == [
        "# TYPE cpu gauge",
        'cpu{host="a"} 1',
        'cpu{host="b"} 0.25',
        "# TYPE lat histogram",
        'lat_bucket{le="0.5",path="a\\"b"} 1',
        'lat_bucket{le="+Inf",path="a\\"b"} 3',
        'lat_sum{path="a\\"b"} 2.5',
        'lat_count{path="a\\"b"} 3',
        "# TYPE reqs counter",
        "reqs 7",
    ]
    assert render([]) == ""


# -- series query -----------------------------------------------------------------------


def q(**params: str):
    matchers = params.pop("match", "")
    return parse_query(
        params, [m for m in matchers.split(";") if m], now=NOW, window_sizes=(10.0, 60.0)
    )


def test_query_defaults_and_matchers() -> None:
    query = q(name="cpu", match='host="a";env!=prod')
    assert (query.start, query.end, query.step, query.window_s) == (NOW - 3600, NOW, 10.0, 10.0)
    assert query.equal == {"host": "a"}
    assert query.not_equal == {"env": "prod"}


def test_query_step_picks_the_largest_dividing_window() -> None:
    assert q(name="cpu", step="5m").window_s == 60.0
    assert q(name="cpu", step="30").window_s == 10.0
    assert q(name="cpu", start="2026-09-01T00:00:00Z", end=str(NOW), step="1h").start == (
        dt.datetime(2026, 9, 1, tzinfo=dt.UTC).timestamp()
    )


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, QueryError.MISSING_NAME),
        ({"name": "a b"}, QueryError.BAD_NAME),
        ({"name": "cpu", "match": "host~a"}, QueryError.BAD_MATCHER),
        ({"name": "cpu", "start": "yesterday"}, QueryError.BAD_TIME),
        ({"name": "cpu", "start": "-5"}, QueryError.BAD_TIME),
        # Past what PostgreSQL's to_timestamp takes: a 400, never the database's 500.
        ({"name": "cpu", "start": "0", "end": "1e20"}, QueryError.BAD_TIME),
        ({"name": "cpu", "end": "9999-12-31T23:59:59-23:59"}, QueryError.BAD_TIME),
        ({"name": "cpu", "step": "99999999999999999999d"}, QueryError.BAD_STEP),
        ({"name": "cpu", "start": str(NOW), "end": str(NOW - 1)}, QueryError.BAD_RANGE),
        ({"name": "cpu", "step": "15s"}, QueryError.BAD_STEP),
        ({"name": "cpu", "step": "5s"}, QueryError.BAD_STEP),
        ({"name": "cpu", "step": "0"}, QueryError.BAD_STEP),
        ({"name": "cpu", "step": "fast"}, QueryError.BAD_STEP),
        ({"name": "cpu", "start": "0", "step": "10"}, QueryError.TOO_MANY_POINTS),
    ],
)
def test_bad_queries_name_their_reason(params: dict, reason: QueryError) -> None:
    with pytest.raises(BadQuery) as caught:
        q(**params)
    assert caught.value.reason is reason


# -- retention --------------------------------------------------------------------------


def test_partition_names_round_trip() -> None:
    day = dt.date(2026, 11, 29)
    assert partition_name(day) == "rollups_p20261129"
    assert parse_partition_name("rollups_p20261129") == day
    assert parse_partition_name("rollups_p20261399") is None
    assert parse_partition_name("rollups") is None


def test_plan_creates_ahead_and_drops_whole_expired_days() -> None:
    now = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC).timestamp()
    policy = RetentionPolicy(retention_days=30, create_ahead_days=2)
    existing = [dt.date(2026, 10, 29), dt.date(2026, 10, 30), dt.date(2026, 11, 29)]
    todo = plan(now, existing, policy)
    assert todo.create == (dt.date(2026, 11, 30), dt.date(2026, 12, 1))
    assert todo.drop == (dt.date(2026, 10, 29),)
    assert day_of(now) == dt.date(2026, 11, 29)
    assert is_retained(now - 30 * 86400, now, policy)
    assert not is_retained(now - 31 * 86400, now, policy)
