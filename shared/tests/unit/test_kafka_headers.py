"""CloudEvents binary-mode headers and W3C traceparent."""

from __future__ import annotations

import re
import uuid

import pytest

from opsmesh.kafka.headers import (
    CONTENT_TYPE,
    SPEC_VERSION,
    TraceContext,
    cloudevent_headers,
    header_value,
    new_trace,
    parse_traceparent,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{SPAN_ID}-01"


def test_parse_valid() -> None:
    assert parse_traceparent(VALID) == TraceContext(TRACE_ID, SPAN_ID, "01")
    assert parse_traceparent(VALID.encode()) == TraceContext(TRACE_ID, SPAN_ID, "01")
    assert parse_traceparent(f"  {VALID}\n") == TraceContext(TRACE_ID, SPAN_ID, "01")
    unsampled = parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-00")
    assert unsampled is not None
    assert unsampled.flags == "00"


def test_header_round_trips() -> None:
    ctx = parse_traceparent(VALID)
    assert ctx is not None
    assert ctx.header() == VALID


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"ff-{TRACE_ID}-{SPAN_ID}-01",  # version ff is invalid by the spec
        f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01",  # short trace id
        f"00-{TRACE_ID}-{SPAN_ID}0-01",  # long span id
        f"00-{TRACE_ID}-{SPAN_ID}-1",
        f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero span id
        f"00-{TRACE_ID[:-1]}g-{SPAN_ID}-01",  # not hex
        f"00_{TRACE_ID}_{SPAN_ID}_01",
        b"\xff\xfe",
    ],
)
def test_parse_invalid(value: str | bytes | None) -> None:
    assert parse_traceparent(value) is None


def test_child_keeps_trace_id_and_flags_with_a_new_span() -> None:
    parent = TraceContext(TRACE_ID, SPAN_ID, "00")
    child = parent.child()
    assert child.trace_id == TRACE_ID
    assert child.flags == "00"
    assert child.span_id != SPAN_ID
    assert re.fullmatch(r"[0-9a-f]{16}", child.span_id)
    assert parse_traceparent(child.header()) == child
    assert parent.child().span_id != child.span_id


def test_new_trace_is_valid_and_sampled() -> None:
    trace = new_trace()
    assert parse_traceparent(trace.header()) == trace
    assert trace.flags == "01"
    assert new_trace().trace_id != trace.trace_id


def test_cloudevent_headers() -> None:
    trace = TraceContext(TRACE_ID, SPAN_ID)
    headers = cloudevent_headers(
        event_type="dev.opsmesh.metric.sampled",
        source="/opsmesh/metrics-ingest",
        time_s=1_700_000_000.5,
        trace=trace,
        event_id="evt-1",
    )
    as_dict = dict(headers)
    assert len(as_dict) == len(headers)  # no header twice
    assert as_dict == {
        "ce_specversion": SPEC_VERSION.encode(),
        "ce_id": b"evt-1",
        "ce_type": b"dev.opsmesh.metric.sampled",
        "ce_source": b"/opsmesh/metrics-ingest",
        "ce_time": b"2023-11-14T22:13:20.500000Z",
        "content-type": CONTENT_TYPE.encode(),
        "traceparent": VALID.encode(),
    }
    assert SPEC_VERSION == "1.0"
    assert all(isinstance(v, bytes) for _, v in headers)


def test_cloudevent_headers_without_trace_and_with_generated_id() -> None:
    headers = cloudevent_headers(event_type="t", source="s", time_s=0.0, trace=None)
    names = [k for k, _ in headers]
    assert "traceparent" not in names
    assert {"ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time"} <= set(names)
    ce_id = header_value(headers, "ce_id")
    assert ce_id is not None
    uuid.UUID(ce_id.decode())
    assert header_value(headers, "ce_time") == b"1970-01-01T00:00:00Z"
    again = cloudevent_headers(event_type="t", source="s", time_s=0.0, trace=None)
    assert header_value(again, "ce_id") != ce_id


def test_header_value_takes_the_last() -> None:
    headers = [("traceparent", b"one"), ("x", b"y"), ("traceparent", b"two")]
    assert header_value(headers, "traceparent") == b"two"
    assert header_value(headers, "missing") is None
    assert header_value(None, "x") is None
    assert header_value((), "x") is None
