"""The sending thread's shortcuts write exactly what the standard library would: the
CloudEvents time and id, the JSON value, the statements in PostgreSQL's placeholders."""

from __future__ import annotations

import json
import math
import os
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsmesh_client import trace
from opsmesh_client.sqltext import postgres_placeholders
from opsmesh_client.wire import event_id, iso_time, slow_query

# Up to year 9999, as datetime goes; the edges of rounding to microseconds included.
TIMES = st.one_of(
    st.floats(min_value=0, max_value=253_402_300_799, allow_nan=False),
    st.integers(0, 4_000_000_000).map(float),
    st.tuples(st.integers(1_000_000_000, 2_000_000_000), st.integers(0, 999_999)).map(
        lambda t: t[0] + t[1] / 1e6 + 5e-7
    ),
)


@given(TIMES)
def test_the_event_time_is_what_datetime_writes(at: float) -> None:
    assert iso_time(at) == datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def test_the_event_time_of_the_edges() -> None:
    for at in (0.0, 1.0, 1_760_000_000.0, 1_760_000_000.9999995, 1_760_000_000.9999996, -1.5):
        assert iso_time(at) == datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def test_event_ids_are_distinct_version_4_uuids() -> None:
    ids = [event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:100]:
        parsed = uuid.UUID(value)
        assert (str(parsed), parsed.version, parsed.variant) == (value, 4, uuid.RFC_4122)


@given(
    sql=st.text(max_size=200),
    duration_ms=st.floats(min_value=-1, max_value=1e9) | st.integers(0, 10**6),
    rows=st.none() | st.integers(-1, 10**12),
    database=st.text(max_size=20),
    started_at=TIMES,
    traced=st.booleans(),
)
def test_a_query_value_is_the_json_of_its_body(
    *,
    sql: str,
    duration_ms: float,
    rows: int | None,
    database: str,
    started_at: float,
    traced: bool,
) -> None:
    record = slow_query(
        sql=sql,
        duration_ms=duration_ms,
        database=database,
        application='shop "é"',
        started_at=started_at,
        rows=rows,
        trace_id="a" * 32 if traced else None,
        span_id="b" * 16 if traced else None,
        parent_span_id="c" * 16 if traced else None,
        traceparent=None,
    )
    assert record.value() == json.dumps(record.body, separators=(",", ":")).encode()


def test_an_infinite_query_duration_is_refused_when_sent_as_before() -> None:
    record = slow_query(
        sql="SELECT 1",
        duration_ms=math.inf,
        database="shop",
        application="shop",
        started_at=1.0,
        rows=None,
        trace_id=None,
        span_id=None,
        parent_span_id=None,
        traceparent=None,
    )
    with pytest.raises(ValueError, match="JSON"):
        record.value()


def test_placeholders_of_a_repeated_or_long_statement_are_the_same() -> None:
    short = "SELECT * FROM t WHERE a = %(a)s AND b = %s AND a2 = %(a)s AND p LIKE '5%%'"
    assert postgres_placeholders(short) == postgres_placeholders(short)
    assert postgres_placeholders(short) == (
        "SELECT * FROM t WHERE a = $1 AND b = $2 AND a2 = $1 AND p LIKE '5%'"
    )
    long = "SELECT 1 WHERE x IN (" + ", ".join(["%s"] * 2000) + ")"
    assert postgres_placeholders(long).endswith("$1999, $2000)")


def test_a_forked_child_makes_ids_of_its_own() -> None:
    """A pre-forking server imports the SDK before it forks its workers."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without the parent's cleanup
        os.write(write, f"{event_id()} {trace.new_span_id()}".encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = os.read(read, 200).decode().split()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child != [event_id(), trace.new_span_id()]
