"""Slow-query and health-report batches over HTTP: each event is held to its type on its
own, the batch to its shape and size."""

from __future__ import annotations

import json

import pytest

from metrics_ingest.rollup.events_body import parse_events
from metrics_ingest.rollup.ingest import BadBody, BodyError, RejectReason
from opsmesh.events import HealthReported, SlowQueryObserved

QUERY = {
    "sql": "SELECT 1",
    "duration_ms": 3.5,
    "database": "shop",
    "application": "shop",
    "started_at": 1_760_000_000.0,
}


def body(*events: object) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def test_valid_events_are_decoded_and_bad_ones_rejected_by_index() -> None:
    parsed = parse_events(
        body(
            QUERY,
            {**QUERY, "duration_ms": -1},
            {**QUERY, "sql": "SELECT '\u0000'"},
            {**QUERY, "schema_version": 2},
            "not an object",
        ),
        SlowQueryObserved,
        max_events=10,
    )
    assert parsed.events == [SlowQueryObserved(**QUERY)]  # type: ignore[arg-type]
    assert [(r.index, r.reason) for r in parsed.rejected] == [
        (1, RejectReason.SCHEMA_VIOLATION),
        (2, RejectReason.UNSTORABLE_TEXT),
        (3, RejectReason.SCHEMA_VIOLATION),
        (4, RejectReason.SCHEMA_VIOLATION),
    ]


def test_health_reports_take_their_own_type() -> None:
    report = {"service": "shop", "instance": "a", "status": "warn", "reported_at": 1.0}
    parsed = parse_events(body(report, QUERY), HealthReported, max_events=10)
    assert [e.status for e in parsed.events] == ["warn"]
    assert [r.index for r in parsed.rejected] == [1]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", BodyError.INVALID_JSON),
        (b'{"samples": []}', BodyError.NOT_A_BATCH),
        (b"[]", BodyError.NOT_A_BATCH),
        (body(*[QUERY] * 3), BodyError.TOO_MANY_SAMPLES),
    ],
)
def test_unusable_bodies_are_refused_whole(raw: bytes, reason: BodyError) -> None:
    with pytest.raises(BadBody) as caught:
        parse_events(raw, SlowQueryObserved, max_events=2)
    assert caught.value.reason is reason
