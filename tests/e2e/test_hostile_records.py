"""Hostile Kafka records against every consumed topic of the running mesh.

Each topic gets a corpus of poison records (broken JSON and UTF-8, NUL characters,
nesting past any decoder's depth, numbers out of range, NaN and Infinity, far-future
timestamps, negative counts, schema versions it does not know, a null record, a gzip
record that decompresses to 3 MB), then one valid record on the same partition. Every
poison record must end in ``opsmesh.dlq`` with its reason, the valid record must be
processed, and the service's group must commit past all of them: no crash, no stall.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh.topics import (
    ALERT_GROUPS,
    DLQ,
    GROUP_ALERT_DISPATCH,
    GROUP_ALERT_ENGINE,
    GROUP_HEALTH_AGGREGATOR,
    GROUP_METRICS_INGEST,
    GROUP_NOTIFIER,
    GROUP_QUERY_ANALYZER,
    HEALTH,
    METRICS,
    NOTIFICATIONS,
    SIGNALS,
    SLOW_QUERIES,
    Topic,
    partition_for,
)
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import Sink
from tests.fixtures.kafka import eventually, header, read_all

pytestmark = pytest.mark.e2e

Path = tuple[str | int, ...]
YEAR_9999_END = 253_402_300_799  # 9999-12-31T23:59:59Z
YEAR_10000 = 253_402_300_800
_PLACEHOLDER = "@@poison@@"


@dataclass(frozen=True)
class Target:
    topic: Topic
    service: str
    group: str
    good: Callable[[str, float], dict[str, Any]]  # (unique, now) -> a valid event's JSON
    text: Path  # a string field
    number: Path  # a float field
    time: Path  # an epoch-seconds field
    count: Path  # a field that must not be negative
    nested: Path  # where to nest too deep (a free-form field where there is one)
    # Whether the service bounds how far ahead of its clock a record may be stamped. Where
    # it does not, a year-9999 stamp (still a valid date) may be processed; the consumer
    # must go on either way.
    future_bounded: bool = False


def _metric(unique: str, now: float) -> dict[str, Any]:
    return {"name": "hostile_after", "value": 1.0, "labels": {"run": unique}, "sampled_at": now}


def _query(unique: str, now: float) -> dict[str, Any]:
    return {
        "sql": f"SELECT * FROM t_{unique} WHERE id = 1",
        "duration_ms": 12.5,
        "rows": 1,
        "database": f"db_{unique}",
        "application": "hostile",
        "started_at": now,
    }


def _health(unique: str, now: float) -> dict[str, Any]:
    return {"service": f"svc-{unique}", "instance": "i-1", "status": "pass", "reported_at": now}


def _signal(unique: str, now: float) -> dict[str, Any]:
    return {
        "source": "metrics",
        "kind": "rollup",
        "name": "e2e_error_ratio",
        "subject": unique,
        "labels": {"service": f"sig-{unique}"},
        "value": 0.99,
        "window_start": now - 1,
        "observed_at": now,
    }


def _routed(unique: str, now: float) -> dict[str, Any]:
    return {
        "alerts": [
            {
                "route_id": "hostile",
                "group_key": f"hostile-{unique}",
                "fingerprint": f"{unique}000000"[:16],
                "labels": {"alertname": "Hostile", "run": unique},
                "starts_at": now - 60,
                "ends_at": now - 1,  # resolved: nothing to notify
                "updated_at": now,
            }
        ],
        "origin": "tests",
    }


def _notification(unique: str, now: float) -> dict[str, Any]:
    return {
        "idempotency_key": f"hostile-{unique}",
        "receiver": "default",
        "group_key": f"g-{unique}",
        "status": "firing",
        "reason": "first_notification",
        "common_labels": {"run": unique},
        "alerts": [
            {
                "fingerprint": "e" * 16,
                "status": "firing",
                "labels": {"alertname": "Hostile", "run": unique},
                "starts_at": now,
            }
        ],
        "truncated_alerts": 0,
        "requested_at": now,
    }


TARGETS = {
    t.topic.name: t
    for t in [
        Target(
            METRICS,
            "metrics-ingest",
            GROUP_METRICS_INGEST,
            _metric,
            text=("labels", "run"),
            number=("value",),
            time=("sampled_at",),
            count=("count",),
            nested=("labels",),
            future_bounded=True,  # METRICS_INGEST_MAX_FUTURE_S
        ),
        Target(
            SLOW_QUERIES,
            "query-analyzer",
            GROUP_QUERY_ANALYZER,
            _query,
            text=("database",),
            number=("duration_ms",),
            time=("started_at",),
            count=("rows",),
            nested=("plan",),  # free-form JSON: the decoder recurses into it
        ),
        Target(
            HEALTH,
            "health-aggregator",
            GROUP_HEALTH_AGGREGATOR,
            _health,
            text=("service",),
            number=("ttl_s",),
            time=("reported_at",),
            count=("ttl_s",),
            nested=("observed_value",),
            future_bounded=True,  # HEALTH_AGGREGATOR_MAX_FUTURE_S
        ),
        Target(
            SIGNALS,
            "alert-engine",
            GROUP_ALERT_ENGINE,
            _signal,
            text=("labels", "service"),
            number=("value",),
            time=("observed_at",),
            count=("window_start",),
            nested=("labels",),
        ),
        Target(
            ALERT_GROUPS,
            "alert-engine",
            GROUP_ALERT_DISPATCH,
            _routed,
            text=("alerts", 0, "labels", "run"),
            number=("alerts", 0, "updated_at"),
            time=("alerts", 0, "ends_at"),
            count=("alerts", 0, "starts_at"),
            nested=("alerts", 0, "labels"),
        ),
        Target(
            NOTIFICATIONS,
            "notifier",
            GROUP_NOTIFIER,
            _notification,
            text=("idempotency_key",),
            number=("alerts", 0, "starts_at"),
            time=("requested_at",),
            count=("truncated_alerts",),
            nested=("common_labels",),
        ),
    ]
}


def _set(document: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    copy = msgspec.json.decode(msgspec.json.encode(document))
    at = copy
    for step in path[:-1]:
        at = at[step]
    at[path[-1]] = value
    return copy  # type: ignore[no-any-return]


def _with_raw(document: dict[str, Any], path: Path, raw: bytes) -> bytes:
    """The document with the JSON text at ``path`` replaced by ``raw`` bytes, as is."""
    encoded = msgspec.json.encode(_set(document, path, _PLACEHOLDER))
    return encoded.replace(f'"{_PLACEHOLDER}"'.encode(), raw)


def _encode(document: dict[str, Any]) -> bytes:
    return msgspec.json.encode(document)


# name -> (value for the target's valid event, or None for a null record), and the
# reason it must be dead-lettered with, when only one is right.
Corpus = dict[str, tuple[Callable[[Target, dict[str, Any]], bytes | None], str | None]]
DEEP = 100_000
CORPUS: Corpus = {
    "invalid_json": (lambda t, d: b'{"truncated": ', DeadLetterReason.INVALID_JSON),
    "not_an_object": (lambda t, d: b"[1, 2, 3]", DeadLetterReason.SCHEMA_VIOLATION),
    "empty": (lambda t, d: b"", DeadLetterReason.INVALID_JSON),
    "invalid_utf8": (lambda t, d: _with_raw(d, t.text, b'"\xff\xfe\xfd"'), None),
    "lone_surrogate": (lambda t, d: _with_raw(d, t.text, b'"\\ud800"'), None),
    "nul_in_string": (lambda t, d: _encode(_set(d, t.text, "a\x00b")), None),
    "deeply_nested": (
        lambda t, d: _with_raw(d, t.nested, b"[" * DEEP + b"]" * DEEP),
        None,
    ),
    "deeply_nested_objects": (
        lambda t, d: _with_raw(d, t.nested, b'{"a":' * DEEP + b"1" + b"}" * DEEP),
        None,
    ),
    "number_out_of_range": (lambda t, d: _with_raw(d, t.number, b"1e400"), None),
    "nan": (lambda t, d: _with_raw(d, t.number, b"NaN"), DeadLetterReason.INVALID_JSON),
    "infinity": (
        lambda t, d: _with_raw(d, t.number, b"-Infinity"),
        DeadLetterReason.INVALID_JSON,
    ),
    "year_9999": (lambda t, d: _encode(_set(d, t.time, YEAR_9999_END)), None),
    "year_10000": (lambda t, d: _encode(_set(d, t.time, YEAR_10000)), None),
    "negative_count": (lambda t, d: _encode(_set(d, t.count, -1)), None),
    "schema_version_99": (
        lambda t, d: _encode({**d, "schema_version": 99}),
        DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION,
    ),
    "schema_version_huge": (
        lambda t, d: _encode({**d, "schema_version": 2**64}),
        DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION,
    ),
    "schema_version_text": (
        lambda t, d: _encode({**d, "schema_version": "1"}),
        DeadLetterReason.SCHEMA_VIOLATION,
    ),
    "null_record": (lambda t, d: None, DeadLetterReason.SCHEMA_VIOLATION),
}
GZIP_CASE = "gzip_3mb"
GZIP_VALUE = b'{"padding": "' + b"a" * 3_000_000 + b'"}'


class DeadLetters(dict[int, Any]):
    """Dead letters by source offset; shown by case and reason (not their values)."""

    def __init__(self, found: dict[int, Any], case_of: dict[int, str]) -> None:
        super().__init__(found)
        self._case_of = case_of

    def __repr__(self) -> str:
        found = {
            self._case_of[o]: (header(r, "dlq_reason") or b"").decode() for o, r in self.items()
        }
        missing = sorted(set(self._case_of.values()) - set(found) - {"valid"})
        return f"dead-lettered {found}; missing {missing}"


async def _processed(target: Target, infra: Endpoints, mesh: Mesh, sink: Sink, unique: str) -> bool:
    """Whether the valid record sent after the corpus had its effect."""
    name = target.topic.name
    if name == METRICS.name:
        return await _count(
            infra.pg_dsn,
            "SELECT count(*) FROM metrics_ingest.rollups WHERE labels->>'run' = %s",
            unique,
        )
    if name == SLOW_QUERIES.name:
        queries = mesh.get_json("query-analyzer", "/api/v1/queries?limit=500")
        return any(q["database"] == f"db_{unique}" for q in queries)  # type: ignore[union-attr]
    if name == HEALTH.name:
        services = mesh.get_json("health-aggregator", "/api/v1/services")
        return any(s["service"] == f"svc-{unique}" for s in services)  # type: ignore[union-attr]
    if name == SIGNALS.name:
        alerts = mesh.get_json("alert-engine", "/api/v1/alerts")["alerts"]  # type: ignore[index]
        return any(a["labels"].get("service") == f"sig-{unique}" for a in alerts)
    if name == ALERT_GROUPS.name:
        return await _count(
            infra.pg_dsn,
            "SELECT count(*) FROM alert_engine.stored_alerts WHERE labels->>'run' = %s",
            unique,
        )
    return bool(sink.notifications(run=unique))


async def _count(dsn: str, sql: str, unique: str) -> bool:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (await conn.execute(sql, (unique,))).fetchone()
        return bool(row and row[0])


async def _committed(bootstrap: str, group: str, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return next(
        (m.offset for tp, m in offsets.items() if (tp.topic, tp.partition) == (topic, partition)),
        -1,
    )


async def _send_all(
    bootstrap: str, topic: str, key: bytes, values: list[tuple[str, bytes | None]]
) -> dict[str, int]:
    """Each value in order (one acknowledged send each), the gzip case by a producer that
    compresses; returns each case's offset."""
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    # The uncompressed size is what the producer checks against its limit; the broker
    # sees ~3 KB.
    gzip = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type="gzip",
        max_request_size=8 * 1024 * 1024,
    )
    await plain.start()
    await gzip.start()
    offsets: dict[str, int] = {}
    try:
        for case, value in values:
            producer = gzip if case == GZIP_CASE else plain
            sent = await producer.send_and_wait(topic, value=value, key=key)
            offsets[case] = sent.offset
    finally:
        await plain.stop()
        await gzip.stop()
    return offsets


@pytest.mark.parametrize("topic", list(TARGETS))
async def test_every_poison_record_is_dead_lettered_and_the_consumer_goes_on(
    infra: Endpoints, mesh: Mesh, sink: Sink, unique: str, topic: str
) -> None:
    target = TARGETS[topic]
    now = time.time()
    good = target.good(unique, now)
    key = (
        good["alerts"][0]["group_key"] if target.topic is ALERT_GROUPS else f"hostile-{unique}"
    ).encode()
    values: list[tuple[str, bytes | None]] = [
        (case, make(target, good)) for case, (make, _) in CORPUS.items()
    ]
    values.append((GZIP_CASE, GZIP_VALUE))
    values.append(("valid", _encode(good)))
    offsets = await _send_all(infra.kafka_bootstrap, topic, key, values)
    partition = partition_for(key.decode(), target.topic.partitions)

    case_of = {offset: case for case, offset in offsets.items()}

    async def dead_letters() -> DeadLetters:
        return DeadLetters(
            {
                int(header(r, "dlq_source_offset") or -1): r
                for r in await read_all(infra.kafka_bootstrap, DLQ.name)
                if header(r, "dlq_source_topic") == topic.encode()
                and int(header(r, "dlq_source_partition") or -1) == partition
                and int(header(r, "dlq_source_offset") or -1) in case_of
            },
            case_of,
        )

    tolerated = set() if target.future_bounded else {"year_9999"}
    poison = {
        case: offset
        for case, offset in offsets.items()
        if case != "valid" and case not in tolerated
    }
    found = await eventually(
        dead_letters,
        until=lambda dead: set(poison.values()) <= set(dead),
        timeout_s=45,
        what=f"every poison record of {topic} in the DLQ",
    )
    reasons = {case: (header(found[o], "dlq_reason") or b"").decode() for case, o in poison.items()}
    for case, reason in reasons.items():
        expected = CORPUS[case][1] if case in CORPUS else DeadLetterReason.TOO_LARGE
        assert reason in set(DeadLetterReason), (case, reason)
        if expected is not None:
            assert reason == expected, (case, reasons)
        record = found[poison[case]]
        assert header(record, "dlq_error"), case
        assert header(record, "dlq_service") == target.service.encode(), case
    gzip_letter = found[poison[GZIP_CASE]]
    assert header(gzip_letter, "dlq_value_truncated") == b"true"
    assert header(gzip_letter, "dlq_value_size") == str(len(GZIP_VALUE)).encode()
    assert gzip_letter.value == GZIP_VALUE[: len(gzip_letter.value)]
    assert offsets["valid"] not in found, "the valid record is not dead-lettered"

    async def processed() -> bool:
        return await _processed(target, infra, mesh, sink, unique)

    await eventually(processed, until=bool, timeout_s=30, what=f"the valid {topic} record")
    await eventually(
        lambda: _committed(infra.kafka_bootstrap, target.group, topic, partition),
        until=lambda committed: committed > offsets["valid"],
        timeout_s=30,
        what=f"{target.group} to commit past the corpus",
    )
    ready = mesh.get_json(target.service, "/health/ready")
    assert ready["status"] == "ready", ready  # type: ignore[index]
    outcomes = {**reasons, **{c: "processed" for c in tolerated if offsets[c] not in found}}
    print(f"{topic}: {outcomes}")  # the table of outcomes, for the report (-s)
