"""One alert end to end through the real parts: a metric sample published to Kafka →
metrics-ingest → signal → alert-engine → notification request → notifier → webhook sink;
then the value drops and the alert resolves."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from opsmesh.events import MetricSampled
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.labels import series_id
from opsmesh.topics import METRICS
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import Sink

pytestmark = pytest.mark.e2e


async def _publish_until(
    producer: EventProducer, service: str, value: float, arrived, *, timeout_s: float = 60.0
) -> None:
    """Publish a sample every 100 ms (the traffic that drives the mesh) until ``arrived()``."""
    labels = {"service": service, "env": "e2e"}
    deadline = time.monotonic() + timeout_s
    while not arrived():
        assert time.monotonic() < deadline, f"nothing arrived within {timeout_s}s"
        sample = MetricSampled(
            name="e2e_error_ratio", value=value, labels=labels, sampled_at=time.time()
        )
        await producer.publish(Outgoing(METRICS, series_id(sample.name, labels), sample))
        deadline_step = time.monotonic() + 0.1
        while time.monotonic() < deadline_step and not arrived():
            await _yield()


async def _yield() -> None:
    await asyncio.sleep(0.02)  # lets the producer's background tasks run between checks


async def test_an_alert_fires_once_and_resolves_once(
    infra: Endpoints, mesh: Mesh, sink: Sink, unique
):
    service = f"checkout-{unique}"
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        await _publish_until(
            producer,
            service,
            0.9,
            lambda: any(p["status"] == "firing" for p in sink.notifications(service=service)),
        )
        await _publish_until(
            producer,
            service,
            0.1,
            lambda: any(p["status"] == "resolved" for p in sink.notifications(service=service)),
        )
    finally:
        await producer.stop()

    payloads = sink.notifications(service=service)
    assert [p["status"] for p in payloads] == ["firing", "resolved"]
    firing, resolved = payloads
    assert firing["version"] == "4"
    assert firing["notificationReason"] == "first_notification"
    assert resolved["notificationReason"] == "all_resolved"
    assert firing["groupLabels"] == {"alertname": "E2EErrorRatio", "service": service}
    (alert,) = firing["alerts"]
    assert alert["labels"] == {
        "alertname": "E2EErrorRatio",
        "service": service,
        "env": "e2e",
        "severity": "page",
    }
    assert alert["annotations"]["summary"].startswith(f"{service} error ratio 0.9")
    # Made clickable under the console that serves runbooks/ (OPSMESH_RUNBOOK_BASE_URL).
    console = f"http://127.0.0.1:{mesh.port('console')}"
    assert alert["annotations"]["runbook_url"] == f"{console}/runbooks/high-error-rate.md"
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]
    assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"

    # Exactly once, shown by the durable logs rather than by waiting for silence: the engine
    # logged two notifications for the group and the notifier delivered two keys, both
    # of which are the ones the sink saw.
    async with await psycopg.AsyncConnection.connect(infra.pg_dsn) as conn:
        cursor = await conn.execute(
            "SELECT sequence, reason, idempotency_key FROM alert_engine.notification_log"
            " WHERE group_key = %s",
            (f'{{}}:{{alertname="E2EErrorRatio", service="{service}"}}',),
        )
        ((sequence, reason, last_key),) = await cursor.fetchall()
        assert (sequence, reason) == (2, "all_resolved")
        cursor = await conn.execute(
            "SELECT idempotency_key, outcome FROM notifier.delivery_log"
            " WHERE idempotency_key = ANY(%s)",
            ([firing["idempotencyKey"], resolved["idempotencyKey"]],),
        )
        assert sorted(r[1] for r in await cursor.fetchall()) == ["delivered", "delivered"]
        cursor = await conn.execute(
            "SELECT count(*) FROM alert_engine.alerts WHERE labels->>'service' = %s", (service,)
        )
        assert (await cursor.fetchone())[0] == 0, "a notified resolve leaves no alert state behind"
    assert resolved["idempotencyKey"] == last_key
    assert firing["idempotencyKey"] != resolved["idempotencyKey"]
    webhook_ids = [e["webhook_id"] for e in sink.received() if e["payload"] in payloads]
    assert webhook_ids == [firing["idempotencyKey"], resolved["idempotencyKey"]]
