"""The SDK's metrics and health reports through real Kafka into metrics-ingest's and
health-aggregator's own stages: request metrics become the rollup signals the built-in
latency and error-rate rules read, a failing check becomes a health status signal, and
every record lands in the partition the mesh computes for its key (murmur2, as Java and
aiokafka partition), which health-aggregator's ownership of checks relies on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from health_aggregator.core.checks import OwnedChecks
from health_aggregator.pipeline.health_stage import HealthStage
from health_aggregator.storage.checks import CheckStore
from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import MemoryHistory, MemoryPublisher
from opsmesh.catalogue import HEALTH_CHECK_STATUS, HTTP_ERROR_RATIO, HTTP_REQUEST_DURATION_SECONDS
from opsmesh.clock import SystemClock
from opsmesh.db.pool import open_pool
from opsmesh.events import HealthReported
from opsmesh.kafka import BatchConsumer, ConsumerConfig, DeadLetterPublisher, EventProducer
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import DLQ, HEALTH, METRICS, Topic, partition_for
from opsmesh_client.client import Client
from opsmesh_client.settings import load
from opsmesh_client.wire import Kind
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock
from tests.fixtures.kafka import eventually, read_all, run_consumer

pytestmark = pytest.mark.integration
T0 = 1_760_000_000.0


class Signals:
    """health-aggregator's producer port, keeping what the stage publishes."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def publish_many(self, items: Any) -> None:
        self.sent.extend(items)


@pytest.fixture
async def producer(infra: Endpoints) -> AsyncIterator[EventProducer]:
    started = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/test")
    await started.start()
    yield started
    await started.stop()


async def test_request_metrics_become_the_rollup_signals_the_builtin_rules_read(
    infra: Endpoints, producer: EventProducer, unique: str
) -> None:
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    metrics = Topic(f"test.sdk.m.{unique}", METRICS.partitions, METRICS.key)
    await ensure_topics(connection, [metrics, DLQ])
    now = [T0]
    client = Client(
        load(
            {},
            service=f"shop-{unique}",
            kafka=infra.kafka_bootstrap,
            environment="demo",
            topics={**dict(load({}, service="x", kafka="x").topics), Kind.METRIC: metrics.name},
        ),
        clock=lambda: now[0],
        start=False,
    )
    try:
        # As metrics-ingest's windows (and Prometheus' rate) read a cumulative series:
        # the increase between two samples of one window, so the first is the baseline.
        client.requests.observe("/orders/{id}", "GET", 200, 0.01)
        now[0] = T0 + 1
        client.flush()
        for status, seconds in [(200, 0.02), (200, 0.04), (500, 2.0), (200, 0.03)]:
            client.requests.observe("/orders/{id}", "GET", status, seconds)
        now[0] = T0 + 5
        client.flush()
        now[0] = T0 + 30  # the next collection closes the first 10 s window
        client.requests.observe("/orders/{id}", "GET", 200, 0.01)
        assert client.flush()
    finally:
        client.close()

    stage = RollupStage(
        rollups=Rollups(WindowConfig((10.0,), 0.0, 0.0)),
        history=MemoryHistory(),
        producer=(signals := MemoryPublisher()),
        clock=FakeClock(T0 + 40),
        registry=CollectorRegistry(),
    )
    stop, task, _ = await run_consumer(connection, metrics, f"g.{unique}", stage, producer)
    try:
        await eventually(
            lambda: asyncio.sleep(0, signals.items),
            until=lambda items: (
                {HTTP_REQUEST_DURATION_SECONDS.name, HTTP_ERROR_RATIO.name}
                <= {i.event.name for i in items}
            ),
            what="rollup signals of the SDK's request metrics",
        )
    finally:
        stop.set()
        await task
    latency = next(
        i.event for i in signals.items if i.event.name == HTTP_REQUEST_DURATION_SECONDS.name
    )
    assert latency.labels["route"] == "/orders/{id}"
    assert latency.stats["p95"] > 1.0  # the 2 s request dominates the window's p95
    ratio = next(i.event for i in signals.items if i.event.name == HTTP_ERROR_RATIO.name)
    assert ratio.value == 0.25
    assert ratio.labels["env"] == "demo"

    records = await read_all(infra.kafka_bootstrap, metrics.name)
    assert records
    assert all(r.partition == partition_for(r.key.decode(), metrics.partitions) for r in records)


async def test_a_failing_check_becomes_a_health_signal(
    infra: Endpoints, producer: EventProducer, unique: str
) -> None:
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    health = Topic(f"test.sdk.h.{unique}", HEALTH.partitions, HEALTH.key)
    await ensure_topics(connection, [health, DLQ])
    service = f"shop-{unique}"
    clients = [
        Client(
            load(
                {},
                service=service,
                instance=f"web-{i}",
                kafka=infra.kafka_bootstrap,
                topics={Kind.HEALTH: health.name, Kind.METRIC: "unused", Kind.SLOW_QUERY: "unused"},
            ),
            start=False,
        )
        for i in range(6)
    ]
    for client in clients:
        client.report_check("database", "fail", output="connection refused")
        assert client.flush()
        client.close()

    pool = await open_pool(infra.pg_dsn, name="sdk-health-test", max_size=2)
    signals = Signals()
    stage = HealthStage(
        owned=OwnedChecks(),
        store=CheckStore(pool),
        producer=signals,  # type: ignore[arg-type]
        clock=SystemClock(),
        registry=CollectorRegistry(),
    )
    registry = CollectorRegistry()
    consumer = BatchConsumer(
        connection=connection,
        config=ConsumerConfig(group_id=f"g.{unique}", topics=(health,)),
        event_type=HealthReported,
        handler=stage,
        dead_letters=DeadLetterPublisher(
            producer, service="t", clock=SystemClock(), registry=registry
        ),
        registry=registry,
        client_id="test",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await eventually(
            lambda: asyncio.sleep(0, signals.sent),
            until=lambda sent: (
                len([s for s in sent if s.event.labels.get("check") == "database"]) == 6
            ),
            what="a health status signal per instance's failing check",
        )
    finally:
        stop.set()
        await task
        await pool.close()
    failing = [s.event for s in signals.sent if s.event.labels.get("check") == "database"]
    assert {s.name for s in failing} == {HEALTH_CHECK_STATUS.name}
    assert {s.value for s in failing} == {2.0}
    assert {s.labels["instance"] for s in failing} == {f"web-{i}" for i in range(6)}

    records = await read_all(infra.kafka_bootstrap, health.name)
    assert len({r.partition for r in records}) > 1  # the keys spread, and each is where
    assert all(r.partition == partition_for(r.key.decode(), health.partitions) for r in records)
