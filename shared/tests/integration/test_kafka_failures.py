"""Handler failures against a real broker: a poison record is isolated and dead-lettered
while the rest flows, an outage is waited out, an endless one turns readiness red and then
stops the worker; a record that decompresses past every limit is still dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from tests.fixtures.kafka import eventually, group_offsets, header, read_all, run_consumer

from opsmesh.events import MetricSampled
from opsmesh.kafka import (
    BatchResult,
    ConsumerStalled,
    EventProducer,
    Outgoing,
    Received,
    StatelessHandler,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.codec import encode
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


@dataclass
class Store(StatelessHandler):
    """A handler over a store that refuses some values (as PostgreSQL refuses a NUL) in
    the whole call, and may be down for a number of calls or for good."""

    refuse: set[float] = field(default_factory=set)
    down_for: int = 0
    stored: list[float] = field(default_factory=list)
    calls: int = 0

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        if not batch:
            return BatchResult()
        self.calls += 1
        if self.down_for > 0:
            self.down_for -= 1
            raise ConnectionRefusedError(111, "Connection refused (simulated outage)")
        refused = [r.event.value for r in batch if r.event.value in self.refuse]
        if refused:
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        self.stored.extend(r.event.value for r in batch)
        return BatchResult()


def sample(value: float) -> MetricSampled:
    return MetricSampled(name="cpu_seconds", value=value, labels={"host": "a"}, sampled_at=1e9)


@pytest.fixture
async def kit(infra: Endpoints, unique: str) -> AsyncIterator[tuple[EventProducer, Topic, dict]]:
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    topic = Topic(f"test.failures.{unique}", 2, "test")
    await ensure_topics(connection, [topic, DLQ])
    producer = EventProducer(connection, source="/tests/failures")
    await producer.start()
    try:
        yield producer, topic, connection
    finally:
        await producer.stop()


async def _dead_letters(connection: dict, source: str) -> list:
    records = await read_all(connection["bootstrap_servers"], DLQ.name)
    return [r for r in records if header(r, "dlq_source_topic") == source.encode()]


async def _committed_total(connection: dict, group: str) -> int:
    return sum(meta.offset for meta in (await group_offsets(connection, group)).values())


async def test_a_record_the_handler_always_fails_on_is_dead_lettered_and_the_rest_handled(
    kit, unique
):
    producer, topic, connection = kit
    # One key: one partition, so the poison record sits between the others in order.
    await producer.publish_many(Outgoing(topic, "one-key", sample(i)) for i in range(200))
    store = Store(refuse={117.0})
    group = f"g.{unique}"
    stop, task, consumer = await run_consumer(connection, topic, group, store, producer)
    try:
        dead = await eventually(
            lambda: _dead_letters(connection, topic.name),
            until=lambda records: len(records) == 1,
            what="the poison record in the DLQ",
        )
        await eventually(
            lambda: _committed_total(connection, group),
            until=lambda total: total == 200,
            what="every offset committed",
        )
        await consumer.ready()  # isolated, not stalled
    finally:
        stop.set()
        await task
    (letter,) = dead
    assert header(letter, "dlq_reason") == b"handler_failed"
    assert header(letter, "dlq_error_class") == b"psycopg.DataError"
    assert header(letter, "dlq_error") == (
        b"psycopg.DataError: PostgreSQL text fields cannot contain NUL (0x00) bytes"
    )
    assert letter.value == encode(sample(117)), "the original bytes"
    assert sorted(store.stored) == [float(i) for i in range(200) if i != 117]
    assert len(store.stored) == 199, "each other record handled once"


async def test_an_outage_is_waited_out_with_nothing_dead_lettered_or_lost(kit, unique):
    producer, topic, connection = kit
    await producer.publish_many(Outgoing(topic, "one-key", sample(i)) for i in range(20))
    store = Store(down_for=4)
    group = f"g.{unique}"
    stop, task, _ = await run_consumer(connection, topic, group, store, producer)
    try:
        await eventually(
            lambda: _committed_total(connection, group),
            until=lambda total: total == 20,
            what="every offset committed after the outage",
        )
    finally:
        stop.set()
        await task
    assert store.stored == [float(i) for i in range(20)], "nothing lost, nothing twice"
    assert store.calls >= 5, "four failed calls, then the one that stored"
    assert await _dead_letters(connection, topic.name) == []


async def test_an_endless_outage_turns_readiness_red_then_the_worker_gives_up(kit, unique):
    producer, topic, connection = kit
    await producer.publish(Outgoing(topic, "one-key", sample(1)))
    store = Store(down_for=1_000_000)
    group = f"g.{unique}"
    registry = CollectorRegistry()
    stop, task, consumer = await run_consumer(
        connection,
        topic,
        group,
        store,
        producer,
        registry=registry,
        retry_max_s=0.2,
        stall_after_s=1.0,
        give_up_after_s=6.0,
    )

    async def readiness() -> str:
        try:
            await consumer.ready()
        except RuntimeError as exc:
            return str(exc)
        return "ready"

    try:
        reason = await eventually(
            readiness, until=lambda r: r.startswith("consumer stalled"), what="readiness red"
        )
        assert "transient" in reason
        assert "ConnectionRefusedError" in reason
        assert registry.get_sample_value("opsmesh_consumer_stalled", {"group": group}) == 1.0
        failures = registry.get_sample_value(
            "opsmesh_consumer_handler_failures_total",
            {"group": group, "failure_class": "transient"},
        )
        assert failures is not None
        assert failures >= 2
        with pytest.raises(ConsumerStalled, match="ConnectionRefusedError"):
            await asyncio.wait_for(task, timeout=30)
    finally:
        stop.set()
        if not task.done():
            await asyncio.wait({task}, timeout=10)
    assert await _committed_total(connection, group) == 0, "nothing committed of the batch"
    assert store.stored == []


async def test_a_gzip_record_that_decompresses_past_every_limit_is_dead_lettered(
    kit, infra, unique
):
    producer, topic, connection = kit
    huge = b'{"name": "' + b"x" * 3_000_000 + b'"}'
    gzip = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap,
        compression_type="gzip",
        max_request_size=8 * 1024 * 1024,  # checked on the uncompressed size
    )
    await gzip.start()
    try:
        sent = await gzip.send_and_wait(topic.name, key=b"one-key", value=huge)
    finally:
        await gzip.stop()
    await producer.publish(Outgoing(topic, "one-key", sample(7)))
    store = Store()
    group = f"g.{unique}"
    stop, task, _ = await run_consumer(connection, topic, group, store, producer)
    try:
        dead = await eventually(
            lambda: _dead_letters(connection, topic.name),
            until=lambda records: len(records) == 1,
            what="the 3 MB record in the DLQ",
        )
        await eventually(
            lambda: _committed_total(connection, group),
            until=lambda total: total == 2,
            what="both offsets committed",
        )
    finally:
        stop.set()
        await task
    (letter,) = dead
    assert int(header(letter, "dlq_source_offset")) == sent.offset
    assert header(letter, "dlq_reason") == b"too_large"
    assert header(letter, "dlq_value_truncated") == b"true"
    assert header(letter, "dlq_value_size") == str(len(huge)).encode()
    assert len(letter.value) < 100_000
    assert huge.startswith(letter.value)
    assert store.stored == [7.0], "the next record is handled"


async def test_a_poison_record_at_the_size_limit_is_still_dead_lettered(kit, infra, unique):
    """A record just under the consumer's limit plus the dead letter's headers is over
    the producer's: the dead letter is capped instead of failing the consumer."""
    producer, topic, connection = kit
    big = MetricSampled(name="cpu_seconds", value=3.0, labels={"pad": "x" * 1000}, sampled_at=1e9)
    value = encode(big)
    value = value[:-1] + b" " * (1_048_000 - len(value)) + b"}"  # whitespace keeps it JSON
    raw = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, max_request_size=2 * 1024 * 1024
    )
    await raw.start()
    try:
        await raw.send_and_wait(topic.name, key=b"one-key", value=value)
    finally:
        await raw.stop()
    await producer.publish(Outgoing(topic, "one-key", sample(8)))
    store = Store(refuse={3.0})
    group = f"g.{unique}"
    stop, task, _ = await run_consumer(connection, topic, group, store, producer)
    try:
        dead = await eventually(
            lambda: _dead_letters(connection, topic.name),
            until=lambda records: len(records) == 1,
            what="the poison record in the DLQ",
        )
        await eventually(
            lambda: _committed_total(connection, group),
            until=lambda total: total == 2,
            what="both offsets committed",
        )
    finally:
        stop.set()
        await task
    (letter,) = dead
    assert header(letter, "dlq_reason") == b"handler_failed"
    assert header(letter, "dlq_value_truncated") == b"true"
    assert header(letter, "dlq_value_size") == str(len(value)).encode()
    assert store.stored == [8.0]
