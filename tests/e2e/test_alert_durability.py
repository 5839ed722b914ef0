"""Durable alert state: SIGKILL the engine between firing and resolve, and the resolve
is still notified exactly once after the restart."""

from __future__ import annotations

import time

import psycopg
import pytest

from opsmesh.events import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import SIGNALS
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import Sink
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.e2e


async def _signal(producer: EventProducer, service: str, value: float) -> None:
    labels = {"service": service, "env": "e2e"}
    signal = SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name="e2e_error_ratio",
        subject=service,
        labels=labels,
        value=value,
        observed_at=time.time(),
    )
    await producer.publish(Outgoing(SIGNALS, service, signal))


async def test_sigkill_between_firing_and_resolve_loses_no_resolve(
    infra: Endpoints, mesh: Mesh, sink: Sink, unique: str
) -> None:
    service = f"durable-{unique}"
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        await _signal(producer, service, 0.9)

        async def statuses() -> list[str]:
            return [p["status"] for p in sink.notifications(service=service)]

        await eventually(statuses, until=lambda s: s == ["firing"], what="the firing notification")
        mesh.kill("alert-engine")  # SIGKILL: no drain, no commit, nothing flushed
        await _signal(producer, service, 0.1)  # the resolve arrives while the engine is down
        mesh.restart("alert-engine")
        await eventually(
            statuses,
            until=lambda s: s == ["firing", "resolved"],
            what="exactly one resolved notification",
            timeout_s=60,
        )
    finally:
        await producer.stop()

    group_key = f'{{}}:{{alertname="E2EErrorRatio", service="{service}"}}'
    async with await psycopg.AsyncConnection.connect(infra.pg_dsn) as conn:
        cursor = await conn.execute(
            "SELECT sequence, reason FROM alert_engine.notification_log WHERE group_key = %s",
            (group_key,),
        )
        assert await cursor.fetchall() == [(2, "all_resolved")]
    fingerprint = sink.notifications(service=service)[0]["alerts"][0]["fingerprint"]
    found = mesh.get_json("alert-engine", f"/api/v1/alerts/{fingerprint}/history")
    assert isinstance(found, dict)
    history = found["history"]
    assert [(h["previous"], h["state"]) for h in history] == [
        ("inactive", "firing"),
        ("firing", "resolved"),
    ]
