"""Remote-Write 1.0 bodies: real snappy-compressed WriteRequests, encoded with the same
protobuf definitions the receiver decodes with, turned into MetricSampled records."""

from __future__ import annotations

import math
import struct

import cramjam
import msgspec
import pytest

from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.remote_write import (
    STALE_NAN_BITS,
    BadRequest,
    BodyProblem,
    Refusal,
    Skip,
    parse_write_request,
    unsnappy,
)
from metrics_ingest.rollup.remote_write_proto import Label, Sample, TimeSeries, WriteRequest
from opsmesh.events.metrics import MetricKind, MetricSampled
from opsmesh.labels import series_id

NOW = 1_800_000_000.0
LIMITS = IngestLimits(max_samples=100, max_future_s=300.0, max_age_s=3600.0)
STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def series(labels: dict[str, str], *points: tuple[float, float]) -> object:
    return TimeSeries(
        labels=[Label(name=k, value=v) for k, v in labels.items()],
        samples=[Sample(value=v, timestamp=round(t * 1000)) for v, t in points],
    )


def body(*timeseries: object) -> bytes:
    return WriteRequest(timeseries=list(timeseries)).SerializeToString()


def snappy(raw: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(raw))


def test_every_sample_becomes_a_metric_sample_keyed_by_its_series() -> None:
    raw = body(
        series({"__name__": "up", "job": "node", "instance": "h:9100"}, (1.0, NOW - 10), (0, NOW)),
        series({"__name__": "http_requests_total", "code": "200"}, (42.0, NOW)),
    )
    decoded = parse_write_request(unsnappy(snappy(raw), 1 << 20), NOW, LIMITS)
    assert not decoded.refused
    assert not decoded.skipped
    up_labels = {"job": "node", "instance": "h:9100"}
    assert decoded.samples == [
        (
            series_id("up", up_labels),
            MetricSampled(name="up", value=1.0, labels=up_labels, sampled_at=NOW - 10),
        ),
        (
            series_id("up", up_labels),
            MetricSampled(name="up", value=0.0, labels=up_labels, sampled_at=NOW),
        ),
        (
            'http_requests_total{code="200"}',
            MetricSampled(
                name="http_requests_total",
                kind=MetricKind.COUNTER,
                value=42.0,
                labels={"code": "200"},
                sampled_at=NOW,
            ),
        ),
    ]


def test_the_records_pass_the_topics_schema_as_the_consumer_decodes_it() -> None:
    """The seam: what remote write publishes is a valid MetricSampled on the wire."""
    raw = body(series({"__name__": "node_load1", "instance": "a"}, (0.5, NOW)))
    [(_, sample)] = parse_write_request(raw, NOW, LIMITS).samples
    again = msgspec.json.decode(msgspec.json.encode(sample), type=MetricSampled)
    assert again == sample


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("x_total", MetricKind.COUNTER),
        ("x_count", MetricKind.COUNTER),
        ("x_sum", MetricKind.COUNTER),
        ("x_bucket", MetricKind.COUNTER),
        ("x_seconds", MetricKind.GAUGE),
        ("total_x", MetricKind.GAUGE),
    ],
)
def test_the_kind_follows_the_naming_conventions(name: str, kind: MetricKind) -> None:
    [(_, sample)] = parse_write_request(
        body(series({"__name__": name}, (1, NOW))), NOW, LIMITS
    ).samples
    assert sample.kind is kind


def test_stale_markers_and_non_finite_values_are_skipped_not_refused() -> None:
    raw = body(
        series({"__name__": "g"}, (STALE, NOW), (math.nan, NOW), (math.inf, NOW), (-math.inf, NOW)),
        series({"__name__": "g", "a": "1"}, (3.0, NOW)),
    )
    decoded = parse_write_request(raw, NOW, LIMITS)
    assert decoded.skipped == {Skip.STALE_MARKER: 1, Skip.NOT_FINITE: 3}
    assert not decoded.refused
    assert [s.value for _, s in decoded.samples] == [3.0]


def test_empty_label_values_are_absent_labels() -> None:
    [(key, sample)] = parse_write_request(
        body(series({"__name__": "g", "empty": "", "a": "1"}, (1, NOW))), NOW, LIMITS
    ).samples
    assert sample.labels == {"a": "1"}
    assert key == 'g{a="1"}'


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"job": "x"}, Refusal.MISSING_NAME),
        ({"__name__": ""}, Refusal.MISSING_NAME),
        ({"__name__": "1bad"}, Refusal.BAD_NAME),
        ({"__name__": "g", "bad-label": "v"}, Refusal.BAD_NAME),
        ({"__name__": "g", "a": "x" * 1025}, Refusal.TOO_LONG),
        ({"__name__": "g" * 201}, Refusal.TOO_LONG),
        ({"__name__": "g", "a": "x\x00y"}, Refusal.UNSTORABLE_TEXT),
        ({"__name__": "g", **{f"l{i}": "v" for i in range(65)}}, Refusal.TOO_MANY_LABELS),
    ],
)
def test_a_series_with_bad_labels_is_refused_with_all_its_samples(
    labels: dict[str, str], reason: Refusal
) -> None:
    raw = body(series(labels, (1, NOW - 1), (2, NOW)), series({"__name__": "ok"}, (1, NOW)))
    decoded = parse_write_request(raw, NOW, LIMITS)
    assert decoded.refused == {reason: 2}
    assert [s.name for _, s in decoded.samples] == ["ok"]
    assert decoded.examples[0].startswith(reason.value)


def test_a_label_given_twice_is_refused() -> None:
    twice = TimeSeries(
        labels=[
            Label(name="__name__", value="g"),
            Label(name="a", value="1"),
            Label(name="a", value="2"),
        ],
        samples=[Sample(value=1, timestamp=int(NOW * 1000))],
    )
    assert parse_write_request(body(twice), NOW, LIMITS).refused == {Refusal.DUPLICATE_LABEL: 1}


def test_samples_out_of_the_accepted_window_and_negative_counters_are_refused() -> None:
    raw = body(
        series({"__name__": "g"}, (1, NOW + 301), (1, NOW - 3601), (1, NOW + 299)),
        series({"__name__": "c_total"}, (-1, NOW)),
    )
    decoded = parse_write_request(raw, NOW, LIMITS)
    assert decoded.refused == {
        Refusal.TOO_FAR_IN_FUTURE: 1,
        Refusal.TOO_OLD: 1,
        Refusal.NEGATIVE_COUNTER: 1,
    }
    assert [s.sampled_at for _, s in decoded.samples] == [NOW + 299]


def test_native_histograms_are_refused_by_name() -> None:
    with_histogram = TimeSeries(
        labels=[Label(name="__name__", value="h")], histograms=[b"\x08\x01"]
    )
    decoded = parse_write_request(body(with_histogram), NOW, LIMITS)
    assert decoded.refused == {Refusal.NATIVE_HISTOGRAM: 1}
    assert not decoded.samples


def test_more_samples_than_the_limit_refuse_the_request() -> None:
    raw = body(series({"__name__": "g"}, *[(1.0, NOW - i) for i in range(101)]))
    with pytest.raises(BadRequest) as caught:
        parse_write_request(raw, NOW, LIMITS)
    assert caught.value.problem is BodyProblem.TOO_MANY_SAMPLES


def test_a_body_that_is_not_a_write_request_is_refused() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_write_request(b"\x0a\xff\xff\xff", NOW, LIMITS)
    assert caught.value.problem is BodyProblem.BAD_PROTOBUF


def test_invalid_utf8_in_a_label_is_a_protobuf_error() -> None:
    # A proto3 string must be UTF-8: the parser refuses it, as Prometheus' receiver does.
    label = b"\x0a\x02\xff\xfe"  # Label.name = two bytes that are not UTF-8
    ts = b"\x0a" + bytes([len(label)]) + label
    with pytest.raises(BadRequest) as caught:
        parse_write_request(b"\x0a" + bytes([len(ts)]) + ts, NOW, LIMITS)
    assert caught.value.problem is BodyProblem.BAD_PROTOBUF


def test_bad_snappy_is_refused() -> None:
    with pytest.raises(BadRequest) as caught:
        unsnappy(b"\x05garbage", 1 << 20)
    assert caught.value.problem is BodyProblem.BAD_SNAPPY
    with pytest.raises(BadRequest) as caught:
        unsnappy(b"", 1 << 20)
    assert caught.value.problem is BodyProblem.BAD_SNAPPY


def test_a_body_that_would_decompress_past_the_limit_is_refused_before_inflating() -> None:
    compressed = snappy(b"\x00" * 100_000)
    assert len(compressed) < 10_000
    with pytest.raises(BadRequest) as caught:
        unsnappy(compressed, 50_000)
    assert caught.value.problem is BodyProblem.TOO_LARGE
    assert unsnappy(compressed, 100_000) == b"\x00" * 100_000


def test_an_empty_write_request_has_nothing_to_publish() -> None:
    decoded = parse_write_request(unsnappy(snappy(body()), 1024), NOW, LIMITS)
    assert not decoded.samples
    assert not decoded.refused
