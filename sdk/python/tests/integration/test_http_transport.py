"""The HTTP transport against metrics-ingest's real HTTP ingest, publishing to real Kafka:
metric samples, slow queries, health reports and profiles arrive on their topics as the Kafka
transport would put them there; a wrong token is a counted rejection, not a retry loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from metrics_ingest.api.gate import HttpIngest
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import http_app
from opsmesh.clock import SystemClock
from opsmesh.db.pool import open_pool
from opsmesh.events import HealthReported, MetricSampled, ProfileRecorded, SlowQueryObserved
from opsmesh.kafka import EventProducer
from opsmesh.topics import HEALTH, METRICS, PROFILES, SLOW_QUERIES, by_name
from opsmesh_client import trace
from opsmesh_client.client import Client
from opsmesh_client.settings import load
from opsmesh_client.testing import compute_for
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration
TOKEN = "sdk-http-transport-token"


@pytest.fixture
async def mesh_url(infra: Endpoints) -> AsyncIterator[str]:
    pool = await open_pool(infra.pg_dsn, name="sdk-http-test", max_size=2)
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/test")
    await producer.start()
    api = HttpIngest(
        token=TOKEN,
        limits=IngestLimits(),
        window_sizes=(10.0,),
        rollups=Rollups(WindowConfig((10.0,))),
        clock=SystemClock(),
        registry=CollectorRegistry(),
        producer=producer,
        pool=pool,
    )
    app = http_app(api)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/"))
    finally:
        await server.close()
        await producer.stop()
        await pool.close()


def http_client(url: str, service: str, token: str, **settings: Any) -> Client:
    return Client(
        load({}, service=service, http=url, http_token=token, flush_interval_s=0.05, **settings)
    )


async def _ends(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(by_name(topic).partitions)]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def _since(bootstrap: str, topic: str, starts: dict[TopicPartition, int]) -> list[Any]:
    """The records appended to the (shared, session-long) topic since ``starts``: reading
    it whole would cost the time of everything other tests wrote to it."""
    ends = await _ends(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        records: list[Any] = []
        while [tp for tp in starts if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(
                    r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)]
                )
        return records
    finally:
        await consumer.stop()


async def test_every_kind_of_event_reaches_its_topic_over_http(
    infra: Endpoints, mesh_url: str, unique: str
) -> None:
    service = f"shop-http-{unique}"
    starts = {
        t: await _ends(infra.kafka_bootstrap, t)
        for t in (METRICS.name, SLOW_QUERIES.name, HEALTH.name, PROFILES.name)
    }
    client = http_client(mesh_url, service, TOKEN, profile_slow_ms=1)
    try:
        client.requests.observe("/cart", "POST", 201, 0.03)
        token = trace.enter(trace.new_trace())
        try:
            client.query("SELECT * FROM carts WHERE id = $1", 0.02, started_at=1.0, rows=1)
        finally:
            trace.leave(token)
        client.report_check("database", "pass", observed_value=3.5)
        opened = client.begin_profile()
        assert opened is not None
        compute_for(0.05)  # five of pyinstrument's 10 ms intervals
        client.end_profile(
            opened, route="/cart", method="POST", status=201, duration_s=0.03, started_at=1.0
        )
        assert await asyncio.to_thread(client.flush, 10.0)
    finally:
        await asyncio.to_thread(client.close)
    assert client.stats()["dropped"] == {}

    def mine(topic: str, event: type[Any], records: list[Any]) -> list[Any]:
        decoded = [msgspec.json.decode(r.value, type=event) for r in records]
        return [
            e
            for e in decoded
            if service in (getattr(e, "application", None), getattr(e, "service", None))
            or (e.__class__ is MetricSampled and e.labels.get("service") == service)
        ]

    samples = mine(
        METRICS.name,
        MetricSampled,
        await _since(infra.kafka_bootstrap, METRICS.name, starts[METRICS.name]),
    )
    assert {s.name for s in samples} == {
        "http_request_duration_seconds",
        "http_requests_total",
        "http_error_ratio",
    }
    (query,) = mine(
        SLOW_QUERIES.name,
        SlowQueryObserved,
        await _since(infra.kafka_bootstrap, SLOW_QUERIES.name, starts[SLOW_QUERIES.name]),
    )
    assert query.sql == "SELECT * FROM carts WHERE id = $1"
    assert query.trace_id is not None
    reports = mine(
        HEALTH.name,
        HealthReported,
        await _since(infra.kafka_bootstrap, HEALTH.name, starts[HEALTH.name]),
    )
    assert sorted(r.check for r in reports) == ["database", "heartbeat"]
    (profile,) = mine(
        PROFILES.name,
        ProfileRecorded,
        await _since(infra.kafka_bootstrap, PROFILES.name, starts[PROFILES.name]),
    )
    assert profile.route == "/cart"
    assert profile.samples >= 1


async def test_a_wrong_token_is_a_counted_rejection(mesh_url: str, unique: str) -> None:
    client = http_client(mesh_url, f"shop-{unique}", "not-the-token")
    try:
        client.report_check("database", "pass")
        await asyncio.to_thread(client.flush, 10.0)
    finally:
        await asyncio.to_thread(client.close)
    dropped = client.stats()["dropped"]
    assert dropped.get("rejected", 0) >= 2  # the check and the heartbeat, not retried
    assert "send_failed" not in dropped
