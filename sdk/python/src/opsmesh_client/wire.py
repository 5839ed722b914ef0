"""The records the SDK sends: the mesh's event shapes, topics, keys and CloudEvents headers.

The SDK does not import the mesh's schema library (it would bring numpy-free but heavy
dependencies into every application); a contract test in the mesh's repository validates
what these builders produce against the services' declared JSON Schemas, topics and
event types, so a change on either side fails there.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
SQL_MAX_CHARS = 100_000
LABEL_VALUE_MAX_CHARS = 1024
PROFILE_MAX_FUNCTIONS = 100
_MAX_BYTES = 2**53  # the bound ProfileRecorded puts on its memory figures


class Kind(StrEnum):
    """What a record is: each kind has its topic, CloudEvents type and HTTP endpoint."""

    METRIC = "metric"
    SLOW_QUERY = "slow_query"
    HEALTH = "health"
    PROFILE = "profile"


EVENT_TYPES: Mapping[Kind, str] = {
    Kind.METRIC: "dev.opsmesh.metric.sampled",
    Kind.SLOW_QUERY: "dev.opsmesh.query.slow-observed",
    Kind.HEALTH: "dev.opsmesh.health.reported",
    Kind.PROFILE: "dev.opsmesh.profile.recorded",
}
DEFAULT_TOPICS: Mapping[Kind, str] = {
    Kind.METRIC: "opsmesh.metrics",
    Kind.SLOW_QUERY: "opsmesh.slow-queries",
    Kind.HEALTH: "opsmesh.health",
    Kind.PROFILE: "opsmesh.profiles",
}


# One encoder for every record: ``json.dumps`` with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

# Event ids need uniqueness, not secrecy: a seeded PRNG makes a version-4 UUID several
# times faster than ``uuid.uuid4`` (a system call per id). Reseeded in a forked child
# (a pre-forking server), whose copy of the state would repeat its parent's ids.
_ids = random.Random()  # noqa: S311
os.register_at_fork(after_in_child=_ids.seed)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def event_id() -> str:
    """A random (version 4, RFC 4122 variant) UUID, as ``str(uuid.uuid4())`` writes it."""
    h = f"{_ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_seconds: dict[int, str] = {}  # a whole second's ISO 8601 text, for the records of that second


def iso_time(at: float) -> str:
    """``at`` in UTC as ``datetime.fromtimestamp(at, UTC).isoformat()`` writes it, with
    ``Z`` for ``+00:00``: the same rounding (microseconds, half to even) and no fraction
    when the microseconds are 0. The whole second's text is reused."""
    fraction, whole = math.modf(at)
    if at < 0:  # never a record's time in practice; the exact conversion, not a copy of it
        return _datetime_iso(at)
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    prefix = _seconds.get(second)
    if prefix is None:
        if len(_seconds) > 64:
            _seconds.clear()
        prefix = _seconds[second] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{prefix}.{micros:06d}Z" if micros else f"{prefix}Z"


def _datetime_iso(at: float) -> str:
    from datetime import UTC, datetime  # noqa: PLC0415 - the rare path only

    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Record:
    """One event, ready for any transport: its kind, Kafka key, body and trace."""

    kind: Kind
    key: str
    body: dict[str, Any]
    at: float
    traceparent: str | None = None
    # The body's JSON when its builder wrote it already (the one sent per query).
    encoded: bytes | None = None

    def value(self) -> bytes:
        if self.encoded is not None:
            return self.encoded
        return _encode(self.body).encode()

    def headers(self, source: str) -> list[tuple[str, str | bytes | None]]:
        """CloudEvents 1.0 binary mode, as the mesh's consumers read it."""
        encoded_source = source.encode()
        headers: list[tuple[str, str | bytes | None]] = [
            _SPEC_VERSION_HEADER,
            ("ce_id", event_id().encode()),
            _TYPE_HEADERS[self.kind],
            ("ce_source", encoded_source),
            ("ce_time", iso_time(self.at).encode()),
            _CONTENT_TYPE_HEADER,
        ]
        if self.traceparent is not None:
            headers.append(("traceparent", self.traceparent.encode()))
        return headers


# The headers every record of a kind shares, encoded once.
_SPEC_VERSION_HEADER = ("ce_specversion", SPEC_VERSION.encode())
_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
_TYPE_HEADERS = {kind: ("ce_type", event_type.encode()) for kind, event_type in EVENT_TYPES.items()}


def series_id(name: str, labels: Mapping[str, str]) -> str:
    """The metrics topic's key: ``name{a="1",b="2"}`` with sorted labels, so every sample
    of a series lands in the partition that owns its rollup windows."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(labels[k])}"' for k in sorted(labels))
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metric_sample(
    name: str,
    kind: str,
    value: float,
    labels: Mapping[str, str],
    at: float,
    *,
    buckets: Sequence[tuple[float, float]] | None = None,
    count: float | None = None,
) -> Record:
    """A ``MetricSampled``. Histograms: ``value`` is the sum, ``buckets`` the cumulative
    finite ``(le, count)`` pairs and ``count`` all observations (the +Inf bucket)."""
    body: dict[str, Any] = {
        "schema_version": 1,
        "name": name,
        "kind": kind,
        "value": float(value),
        "labels": {k: v[:LABEL_VALUE_MAX_CHARS] for k, v in labels.items()},
        "sampled_at": at,
        "buckets": None,
        "count": None,
    }
    if buckets is not None:
        body["buckets"] = [{"le": le, "count": c} for le, c in buckets if math.isfinite(le)]
        body["count"] = count
    return Record(Kind.METRIC, series_id(name, body["labels"]), body, at)


def slow_query(
    *,
    sql: str,
    duration_ms: float,
    database: str,
    application: str,
    started_at: float,
    rows: int | None,
    trace_id: str | None,
    span_id: str | None,
    parent_span_id: str | None,
    traceparent: str | None,
) -> Record:
    """A ``SlowQueryObserved``: the statement as the driver got it (placeholders, never
    the bound parameters), its span under the request's span (N+1 detection reads the
    repeats under one parent)."""
    body: dict[str, Any] = {
        "schema_version": 1,
        "sql": sql[:SQL_MAX_CHARS],
        "duration_ms": max(0.0, duration_ms),
        "rows": rows if rows is not None and rows >= 0 else None,
        "database": database,
        "application": application,
        "request_id": None,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_span_id,
        "started_at": started_at,
        "plan": None,
    }
    # Keyed by database: the fingerprint is query-analyzer's to compute (pglast).
    try:
        encoded: bytes | None = _slow_query_json(body)
    except ValueError:  # an infinite duration: refused when sent, by the transport, as ever
        encoded = None
    return Record(Kind.SLOW_QUERY, database, body, started_at, traceparent, encoded)


def _slow_query_json(body: Mapping[str, Any]) -> bytes:
    """What ``Record.value`` would write for a query's body (the most frequent event), in
    one format instead of the general encoder's walk: the same text, a few times faster."""
    return (
        f'{{"schema_version":{_json(body["schema_version"])},"sql":{_json(body["sql"])},'
        f'"duration_ms":{_json(body["duration_ms"])},"rows":{_json(body["rows"])},'
        f'"database":{_json(body["database"])},"application":{_json(body["application"])},'
        f'"request_id":{_json(body["request_id"])},"trace_id":{_json(body["trace_id"])},'
        f'"span_id":{_json(body["span_id"])},"parent_span_id":{_json(body["parent_span_id"])},'
        f'"started_at":{_json(body["started_at"])},"plan":{_json(body["plan"])}}}'
    ).encode()


_string = json.encoder.encode_basestring_ascii  # the C escaping json.dumps uses


def _json(value: object) -> str:
    """One value as ``json.dumps`` writes it: the common types directly, others by it."""
    kind = type(value)
    if kind is str:
        return _string(value)  # type: ignore[arg-type]
    if value is None:
        return "null"
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    return _encode(value)  # bools, subclasses, and non-finite floats (refused, as ever)


def health_report(
    *,
    service: str,
    instance: str,
    check: str,
    kind: str,
    status: str,
    at: float,
    ttl_s: float,
    output: str | None = None,
    observed_value: float | str | None = None,
    critical: bool = True,
) -> Record:
    """A ``HealthReported``: a heartbeat or one check's result, expiring after ``ttl_s``."""
    body: dict[str, Any] = {
        "schema_version": 1,
        "service": service,
        "instance": instance,
        "check": check,
        "kind": kind,
        "status": status,
        "observed_value": observed_value,
        "output": output[:16_384] if output is not None else None,
        "critical": critical,
        "ttl_s": ttl_s,
        "reported_at": at,
    }
    return Record(Kind.HEALTH, f"{service}/{instance}", body, at)


def profile(
    *,
    service: str,
    instance: str,
    route: str,
    method: str,
    status: int,
    reason: str,
    duration_ms: float,
    interval_ms: float,
    samples: int,
    functions: Sequence[Mapping[str, Any]],
    started_at: float,
    trace_id: str | None,
    span_id: str | None,
    traceparent: str | None,
    memory_peak_bytes: int | None = None,
    memory_net_bytes: int | None = None,
) -> Record:
    """A ``ProfileRecorded``: one request's stack samples aggregated per function (the
    top ``PROFILE_MAX_FUNCTIONS``), keyed by service and route so one partition owns a
    route's profiles."""
    body: dict[str, Any] = {
        "schema_version": 1,
        "service": service,
        "instance": instance,
        "route": route[:512],
        "method": method[:16],
        "status": status,
        "reason": reason,
        "duration_ms": max(0.0, duration_ms),
        "interval_ms": interval_ms,
        "samples": samples,
        "functions": [
            {
                "function": str(f["function"])[:512] or "?",
                "file": str(f["file"])[:1024],
                "line": max(0, int(f["line"])),
                "self_samples": int(f["self_samples"]),
                "total_samples": int(f["total_samples"]),
            }
            for f in functions[:PROFILE_MAX_FUNCTIONS]
        ],
        "trace_id": trace_id,
        "span_id": span_id,
        "started_at": started_at,
        # null unless profile_memory measured them; consumers of the event before these
        # fields ignore them (unknown fields are skipped).
        "memory_peak_bytes": None
        if memory_peak_bytes is None
        else min(max(0, memory_peak_bytes), _MAX_BYTES),
        "memory_net_bytes": None
        if memory_net_bytes is None
        else min(max(-_MAX_BYTES, memory_net_bytes), _MAX_BYTES),
    }
    return Record(Kind.PROFILE, f"{service}/{body['route']}", body, started_at, traceparent)
