"""A malformed event on any input topic lands in the DLQ with its reason, and the
consumer keeps going: a valid event sent after it is processed."""

from __future__ import annotations

import time
import urllib.request

import psycopg
import pytest

from opsmesh.events import (
    Alert,
    AlertStatus,
    HealthReported,
    HealthStatus,
    MetricSampled,
    NotificationRequested,
    NotifyReason,
    SignalKind,
    SignalObserved,
    SignalSource,
    SlowQueryObserved,
)
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import DLQ, HEALTH, METRICS, NOTIFICATIONS, SIGNALS, SLOW_QUERIES
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import Sink
from tests.fixtures.kafka import eventually, header, read_all

pytestmark = pytest.mark.e2e

CONSUMERS = {
    METRICS.name: "metrics-ingest",
    SLOW_QUERIES.name: "query-analyzer",
    HEALTH.name: "health-aggregator",
    SIGNALS.name: "alert-engine",
    NOTIFICATIONS.name: "notifier",
}


async def test_malformed_events_are_dead_lettered_and_consumers_keep_going(
    infra: Endpoints, mesh: Mesh, sink: Sink, unique: str
) -> None:
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    now = time.time()
    try:
        for topic in CONSUMERS:
            await (await producer.send_raw(topic, f"bad-{unique}".encode(), b'{"truncated": ', []))
        # After the bad records, on the same keys (so the same partitions), valid ones.
        await producer.publish_many(
            [
                Outgoing(
                    SLOW_QUERIES,
                    f"bad-{unique}",
                    SlowQueryObserved(
                        sql=f"SELECT * FROM t_{unique} WHERE id = 1",
                        duration_ms=12.5,
                        database=f"db_{unique}",
                        application="e2e",
                        started_at=now,
                    ),
                ),
                Outgoing(
                    HEALTH,
                    f"bad-{unique}",
                    HealthReported(
                        service=f"svc-{unique}",
                        instance="i-1",
                        status=HealthStatus.PASS,
                        reported_at=now,
                    ),
                ),
                Outgoing(
                    METRICS,
                    f"bad-{unique}",
                    MetricSampled(
                        name="e2e_after_bad", value=1.0, labels={"run": unique}, sampled_at=now
                    ),
                ),
                Outgoing(
                    SIGNALS,
                    f"bad-{unique}",
                    SignalObserved(
                        source=SignalSource.METRICS,
                        kind=SignalKind.ROLLUP,
                        name="e2e_error_ratio",
                        subject=unique,
                        labels={"service": f"sig-{unique}"},
                        value=0.99,
                        observed_at=now,
                    ),
                ),
                Outgoing(
                    NOTIFICATIONS,
                    f"bad-{unique}",
                    NotificationRequested(
                        idempotency_key=f"key-{unique}",
                        receiver="default",
                        group_key=f"g-{unique}",
                        status=AlertStatus.FIRING,
                        reason=NotifyReason.FIRST_NOTIFICATION,
                        alerts=[
                            Alert(
                                fingerprint="f" * 16,
                                status=AlertStatus.FIRING,
                                labels={"alertname": "Direct", "run": unique},
                                starts_at=now,
                            )
                        ],
                        common_labels={"run": unique},
                        requested_at=now,
                    ),
                ),
            ]
        )
    finally:
        await producer.stop()

    async def ours() -> list:
        return [
            r
            for r in await read_all(infra.kafka_bootstrap, DLQ.name)
            if r.key == f"bad-{unique}".encode()
        ]

    dead = await eventually(ours, until=lambda rs: len(rs) == len(CONSUMERS), what="5 dead letters")
    by_topic = {header(r, "dlq_source_topic").decode(): r for r in dead}
    assert set(by_topic) == set(CONSUMERS)
    for topic, record in by_topic.items():
        assert header(record, "dlq_reason") == b"invalid_json"
        assert header(record, "dlq_service").decode() == CONSUMERS[topic]
        assert record.value == b'{"truncated": '

    # Every consumer processed the valid record that followed its bad one.
    async def after() -> dict[str, bool]:
        return {
            "query-analyzer": any(
                q["database"] == f"db_{unique}"
                for q in mesh.get_json("query-analyzer", "/api/v1/queries?limit=500")
            ),
            "health-aggregator": any(
                s["service"] == f"svc-{unique}"
                for s in mesh.get_json("health-aggregator", "/api/v1/services")
            ),
            "alert-engine": any(
                a["labels"].get("service") == f"sig-{unique}"
                for a in mesh.get_json("alert-engine", "/api/v1/alerts")["alerts"]
            ),
            "notifier": any(
                e["payload"]["commonLabels"].get("run") == unique for e in sink.received()
            ),
            "metrics-ingest": await _rollup_stored(infra.pg_dsn, unique),
        }

    await eventually(after, until=lambda seen: all(seen.values()), what="valid records processed")


async def _rollup_stored(dsn: str, unique: str) -> bool:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM metrics_ingest.rollups WHERE labels->>'run' = %s", (unique,)
        )
        row = await cursor.fetchone()
        return bool(row and row[0] > 0)


def test_every_service_is_live_ready_and_exposes_metrics(mesh: Mesh) -> None:
    for name, service in mesh.running.items():
        assert mesh.get_json(name, "/health/live") == {"status": "alive", "service": name}
        ready = mesh.get_json(name, "/health/ready")
        assert ready["status"] == "ready", (name, ready)
        assert {"kafka", "postgres"} <= set(ready["checks"]), (name, ready)
        assert all(v == "ok" for v in ready["checks"].values()), (name, ready)
        with urllib.request.urlopen(f"{service.url}/metrics", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
        assert "# TYPE opsmesh_consumer_records_total counter" in text, name
        assert "opsmesh_consumer_lag" in text, name
