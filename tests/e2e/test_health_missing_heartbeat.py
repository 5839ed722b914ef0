"""health-aggregator as a process: an instance that stops heartbeating is reported failed
(a signal, the history, /health/) within its TTL + 1 s; liveness never follows the fleet."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import msgspec
import pytest

from opsmesh.events import HealthReported, HealthStatus, SignalObserved
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import HEALTH, SIGNALS
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.fixtures.kafka import eventually, read_all

pytestmark = pytest.mark.e2e
SERVICE = "health-aggregator"
TTL = 2.0


def _get(mesh: Mesh, path: str) -> tuple[int, str, dict]:
    url = f"{mesh.running[SERVICE].url}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], json.loads(exc.read())


async def test_a_stopped_instance_fails_within_ttl_plus_one_second(
    infra: Endpoints, mesh: Mesh, unique: str
) -> None:
    service = f"hb-{unique}"
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    last = 0.0
    try:
        for _ in range(6):
            last = time.time()
            for instance in ("a", "b"):
                report = HealthReported(
                    service=service,
                    instance=instance,
                    status=HealthStatus.PASS,
                    ttl_s=TTL if instance == "a" else 600.0,
                    reported_at=last,
                )
                await producer.publish(Outgoing(HEALTH, f"{service}/{instance}", report))
            await asyncio.sleep(0.4)  # the heartbeat interval
    finally:
        await producer.stop()

    async def expired() -> list[SignalObserved]:
        found = []
        for record in await read_all(infra.kafka_bootstrap, SIGNALS.name):
            if not (record.key or b"").startswith(f"{service}/".encode()):
                continue  # others' signals, including deliberately malformed ones
            signal = msgspec.json.decode(record.value, type=SignalObserved)
            if signal.labels.get("service") == service and signal.labels["cause"] == "ttl_expired":
                found.append((signal, record.timestamp / 1000))
        return found

    found = await eventually(expired, until=bool, timeout_s=20, what="a ttl_expired signal")
    ((signal, produced_at),) = found
    assert signal.labels["instance"] == "a"
    assert signal.value == 2.0, "fail"
    assert produced_at - last <= TTL + 1.0, (
        f"reported {produced_at - last:.2f}s after the last beat"
    )

    status, content_type, doc = await eventually(
        lambda: asyncio.to_thread(_get, mesh, f"/health/check/{service}/"),
        until=lambda r: r[2].get("status") == "fail",
        timeout_s=10,
        what="the service to fail in /health/check",
    )
    assert status == 503
    assert content_type.startswith("application/health+json")
    by_instance = {e["componentId"]: e["status"] for e in doc["checks"]["heartbeat:status"]}
    assert by_instance == {"a": "fail", "b": "pass"}

    # The fleet view refreshes on an interval (HEALTH_AGGREGATOR_VIEW_REFRESH_S, 0.5 s).
    status, _, _ = await eventually(
        lambda: asyncio.to_thread(_get, mesh, "/health/"),
        until=lambda r: r[2]["checks"].get(f"{service}:instances", [{}])[0].get("status") == "fail",
        timeout_s=5,
        what="the fleet view to show the service failing",
    )
    assert status == 503
    live_status, _, live = await asyncio.to_thread(_get, mesh, "/health/live/")
    assert (live_status, live["status"]) == (200, "pass"), "liveness never follows the fleet"
    ready_status, _, _ = await asyncio.to_thread(_get, mesh, "/health/ready/")
    assert ready_status == 200, "readiness never follows the fleet"
    detail = await asyncio.to_thread(mesh.get_json, SERVICE, f"/api/v1/services/{service}")
    assert any(h["cause"] == "ttl_expired" for h in detail["history"])
