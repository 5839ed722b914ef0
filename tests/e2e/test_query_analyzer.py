"""query-analyzer as a process in the mesh: an N+1 request published to the slow-query
topic becomes a stored finding (REST) and a signal for alert-engine; the service serves
its OpenAPI document and answers bad input with a 400."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from typing import Any

import msgspec
import pytest

from opsmesh.catalogue import QUERY_N_PLUS_ONE
from opsmesh.events import SlowQueryObserved
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import SIGNALS, SLOW_QUERIES
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.fixtures.kafka import eventually, read_all

pytestmark = pytest.mark.e2e


async def test_an_n_plus_one_request_becomes_a_finding_and_a_signal(
    infra: Endpoints, mesh: Mesh, unique: str
) -> None:
    database = f"e2e_{unique}"
    now = time.time()
    trace = {"trace_id": f"trace-{unique}", "parent_span_id": "view", "application": "shop"}
    events = [
        SlowQueryObserved(
            sql="SELECT * FROM posts ORDER BY id LIMIT 20",
            duration_ms=4,
            database=database,
            started_at=now,
            span_id="s0",
            **trace,
        ),
        *(
            SlowQueryObserved(
                sql=f"SELECT * FROM authors WHERE id = {i}",
                duration_ms=15,
                database=database,
                started_at=now + 0.01 * (i + 1),
                span_id=f"s{i + 1}",
                **trace,
            )
            for i in range(5)
        ),
    ]
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        # One key for the request, so one consumer sees its spans together.
        await producer.publish_many(Outgoing(SLOW_QUERIES, f"trace-{unique}", e) for e in events)
    finally:
        await producer.stop()

    async def findings() -> list[dict]:
        path = f"/api/v1/findings?kind=n_plus_one&database={database}"
        return await asyncio.to_thread(mesh.get_json, "query-analyzer", path)

    [finding] = await eventually(findings, until=bool, what="the N+1 finding")
    assert finding["evidence"]["repeats"] == 5
    assert finding["evidence"]["total_ms"] == 75

    async def signals() -> list[SignalObserved]:
        records = await read_all(infra.kafka_bootstrap, SIGNALS.name)
        return [s for s in map(_signal, records) if s and s.labels.get("database") == database]

    [signal] = await eventually(signals, until=bool, what="the N+1 signal")
    assert signal.name == QUERY_N_PLUS_ONE.name
    assert signal.subject == finding["id"]


def _signal(record: Any) -> SignalObserved | None:
    """Other tests put deliberately bad records on the topic; they are not ours."""
    try:
        return msgspec.json.decode(record.value or b"", type=SignalObserved)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def test_openapi_and_bad_input(mesh: Mesh) -> None:
    document = mesh.get_json("query-analyzer", "/api/v1/openapi.json")
    assert isinstance(document, dict)
    assert "/api/v1/recommendations" in document["paths"]
    with pytest.raises(urllib.error.HTTPError) as caught:
        mesh.get_json("query-analyzer", "/api/v1/queries?limit=nope")
    assert caught.value.code == 400
    assert b"limit must be an integer" in caught.value.read()
