"""Valid samples whose sums overflow float64, through the running mesh: every signal
metrics-ingest emits carries finite numbers (the sum saturated at ±1.797e308), none is
dead-lettered by alert-engine, and the history answers ``GET /api/v1/series`` with the
same finite values, re-aggregated without PostgreSQL's float overflow error."""

from __future__ import annotations

import math
import sys
import time
import uuid
from typing import Any

import aiohttp
import msgspec
import pytest

from opsmesh.events import MetricSampled
from opsmesh.events.metrics import MetricKind
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.labels import series_id
from opsmesh.topics import DLQ, METRICS, SIGNALS
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.fixtures.kafka import eventually, header, read_all

pytestmark = pytest.mark.e2e

HUGE = 1.7e308
MAX = sys.float_info.max


async def _signals(bootstrap: str, name: str) -> list[dict[str, Any]]:
    out = []
    for record in await read_all(bootstrap, SIGNALS.name):
        if record.value is None or name.encode() not in record.value:
            continue
        signal = msgspec.json.decode(record.value)
        if signal.get("name") == name:
            out.append(signal)
    return out


def _finite(number: object) -> bool:
    return isinstance(number, float) and math.isfinite(number)


async def test_overflowing_sums_become_finite_signals_and_history(
    infra: Endpoints, mesh: Mesh
) -> None:
    name = f"overflow_{uuid.uuid4().hex[:8]}"
    gauge, counter = {"kind": "gauge"}, {"kind": "counter"}
    # Two whole 1 s windows inside one 2 s step, a little ahead of the clock so no
    # sample is late whatever the partition's watermark.
    base = math.ceil(time.time() / 2) * 2 + 2
    samples = [
        MetricSampled(name=name, value=HUGE, labels=gauge, sampled_at=base + 0.1),
        MetricSampled(name=name, value=HUGE, labels=gauge, sampled_at=base + 0.2),
        MetricSampled(name=name, value=HUGE, labels=gauge, sampled_at=base + 1.1),
        MetricSampled(name=name, value=HUGE, labels=gauge, sampled_at=base + 1.2),
        MetricSampled(
            name=name, kind=MetricKind.COUNTER, value=-HUGE, labels=counter, sampled_at=base + 0.1
        ),
        MetricSampled(
            name=name, kind=MetricKind.COUNTER, value=HUGE, labels=counter, sampled_at=base + 0.2
        ),
    ]
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        await producer.publish_many(
            Outgoing(METRICS, series_id(s.name, s.labels), s) for s in samples
        )
    finally:
        await producer.stop()

    signals = await eventually(
        lambda: _signals(infra.kafka_bootstrap, name),
        until=lambda found: len(found) >= 3,
        timeout_s=45,
        what="the three windows' signals",
    )
    for signal in signals:
        assert _finite(signal["value"]), signal
        assert all(_finite(v) for v in signal["stats"].values()), signal
    by_kind = {(s["labels"]["kind"], s["window_start"]): s for s in signals}
    assert by_kind["gauge", base]["stats"]["sum"] == MAX
    assert by_kind["gauge", base]["value"] == HUGE
    assert by_kind["counter", base]["stats"]["increase"] == MAX
    assert by_kind["counter", base]["value"] == MAX  # the rate over 1 s

    # alert-engine took every one of them: none of these series' signals is dead-lettered.
    subjects = {series_id(name, gauge).encode(), series_id(name, counter).encode()}
    dead = [
        r
        for r in await read_all(infra.kafka_bootstrap, DLQ.name)
        if header(r, "dlq_source_topic") == SIGNALS.name.encode() and r.key in subjects
    ]
    assert dead == []

    query = f"/api/v1/series?name={name}&start={base - 10}&end={base + 10}&step=2"
    async with (
        aiohttp.ClientSession() as session,
        session.get(mesh.running["metrics-ingest"].url + query) as response,
    ):
        assert response.status == 200, await response.text()
        answer = msgspec.json.decode(await response.read())
    points = {s["labels"]["kind"]: s["points"] for s in answer["series"]}
    (two_windows,) = points["gauge"]
    assert two_windows["count"] == 4
    assert two_windows["sum"] == MAX, "two saturated windows add up to a saturated sum"
    for point in (*points["gauge"], *points["counter"]):
        assert all(_finite(v) for k, v in point.items() if k not in ("t", "count")), point
