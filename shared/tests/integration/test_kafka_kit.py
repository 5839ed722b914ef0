"""The Kafka kit against a real broker: decode, dead letters, commits, retries, headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import msgspec
import pytest
from aiokafka import TopicPartition
from tests.fixtures.kafka import eventually, group_offsets, header, read_all, run_consumer

from opsmesh.events import MetricSampled
from opsmesh.kafka import (
    BatchResult,
    EventProducer,
    Outgoing,
    Received,
    StatelessHandler,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.headers import new_trace, parse_traceparent
from opsmesh.topics import DLQ, Topic, partition_for
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


@dataclass
class Recorder(StatelessHandler):
    """Records what it is given; can fail a number of times or hold offsets back."""

    seen: list[Received[MetricSampled]] = field(default_factory=list)
    calls_with_records: int = 0
    fail_times: int = 0
    hold: dict[tuple[str, int], int] = field(default_factory=dict)

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        if batch:
            self.calls_with_records += 1
            if self.fail_times > 0:
                self.fail_times -= 1
                raise ConnectionRefusedError(111, "database is down (simulated)")
            self.seen.extend(batch)
        return BatchResult(hold_from=dict(self.hold))


def sample(value: float, name: str = "cpu_seconds") -> MetricSampled:
    return MetricSampled(name=name, value=value, labels={"host": "a"}, sampled_at=1_700_000_000.0)


@pytest.fixture
async def kit(infra: Endpoints, unique: str) -> AsyncIterator[tuple[EventProducer, Topic, dict]]:
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    topic = Topic(f"test.kit.{unique}", 2, "test")
    await ensure_topics(connection, [topic, DLQ])
    producer = EventProducer(connection, source="/tests/kit")
    await producer.start()
    try:
        yield producer, topic, connection
    finally:
        await producer.stop()


async def committed(connection: dict, group: str) -> dict[int, int]:
    offsets = await group_offsets(connection, group)
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


async def test_bad_records_go_to_the_dlq_with_reason_and_origin_while_good_ones_flow(kit, unique):
    producer, topic, connection = kit
    bad = {
        b"bad-json": b'{"name": "cpu", "value": ',
        b"bad-schema": b'{"name": "has space", "value": 1, "sampled_at": 1}',
        b"too-new": msgspec.json.encode({**msgspec.to_builtins(sample(1)), "schema_version": 99}),
    }
    for key, value in bad.items():
        await (await producer.send_raw(topic.name, key, value, [("origin", b"test")]))
    await producer.publish_many(Outgoing(topic, f"k{i}", sample(i)) for i in range(20))

    handler = Recorder()
    group = f"g.{unique}"
    stop, task, _ = await run_consumer(connection, topic, group, handler, producer)
    try:
        await eventually(lambda: _count(handler), until=lambda n: n == 20, what="20 good records")
        dead = await eventually(
            lambda: _dead_letters(connection, topic.name),
            until=lambda records: len(records) == 3,
            what="3 dead letters",
        )
    finally:
        stop.set()
        await task

    reasons = {r.key: header(r, "dlq_reason") for r in dead}
    assert reasons == {
        b"bad-json": b"invalid_json",
        b"bad-schema": b"schema_violation",
        b"too-new": b"unsupported_schema_version",
    }
    for record in dead:
        assert record.value == bad[record.key], "the original bytes are kept"
        assert header(record, "dlq_source_topic") == topic.name.encode()
        assert header(record, "dlq_service") == b"tests"
        assert header(record, "origin") == b"test", "original headers are kept"
        assert int(header(record, "dlq_source_offset")) >= 0
        assert header(record, "dlq_error")
    assert sorted(r.event.value for r in handler.seen) == list(range(20))
    offsets = await committed(connection, group)
    assert sum(offsets.values()) == 23, "every record, good or dead-lettered, is committed"


async def test_a_failing_handler_gets_the_same_batch_again_and_nothing_is_committed_meanwhile(
    kit, unique
):
    producer, topic, connection = kit
    await producer.publish_many(Outgoing(topic, "one-key", sample(i)) for i in range(5))
    handler = Recorder(fail_times=3)
    group = f"g.{unique}"
    stop, task, _ = await run_consumer(connection, topic, group, handler, producer)
    try:
        await eventually(
            lambda: _count(handler), until=lambda n: n == 5, what="records after retries"
        )
        assert handler.calls_with_records >= 4, "three failures, then success"
        await eventually(
            lambda: committed(connection, group),
            until=lambda o: sum(o.values()) == 5,
            what="commit after success",
        )
    finally:
        stop.set()
        await task
    assert [r.event.value for r in handler.seen] == [0, 1, 2, 3, 4], "no record lost or repeated"


async def test_offsets_held_by_the_handler_are_not_committed(kit, unique):
    producer, topic, connection = kit
    await producer.publish_many(Outgoing(topic, "same-key", sample(i)) for i in range(10))
    partition = await _partition_of(connection, topic)
    handler = Recorder(hold={(topic.name, partition): 4})
    group = f"g.{unique}"
    stop, task, _ = await run_consumer(connection, topic, group, handler, producer)
    try:
        await eventually(lambda: _count(handler), until=lambda n: n == 10, what="10 records")
    finally:
        stop.set()
        await task
    assert (await committed(connection, group)).get(partition) == 4


async def test_records_carry_cloudevents_headers_and_continue_the_trace(kit):
    producer, topic, connection = kit
    trace = new_trace()
    await producer.publish(Outgoing(topic, "traced", sample(1.0), trace=trace, event_id="evt-1"))
    records = await read_all(connection["bootstrap_servers"], topic.name)
    (record,) = records
    assert header(record, "ce_specversion") == b"1.0"
    assert header(record, "ce_type") == b"dev.opsmesh.metric.sampled"
    assert header(record, "ce_source") == b"/tests/kit"
    assert header(record, "ce_id") == b"evt-1"
    assert header(record, "ce_time").endswith(b"Z")
    # Span export is off: the record carries the context it continues, unchanged (as
    # OpenTelemetry's no-op tracer passes a context on).
    assert parse_traceparent(header(record, "traceparent")) == trace


async def test_records_published_together_share_one_span_and_land_on_their_keys_partition(kit):
    producer, topic, connection = kit
    trace = new_trace()
    keys = [f"series-{i}" for i in range(6)]
    items = [Outgoing(topic, key, sample(float(i))) for i, key in enumerate(keys)]
    items[2] = Outgoing(topic, keys[2], sample(2.0), event_id="stable-id")
    await producer.publish_batched(items, trace)
    records = await read_all(connection["bootstrap_servers"], topic.name)
    by_key = {r.key.decode(): r for r in records}
    assert set(by_key) == set(keys)
    spans = {header(r, "traceparent") for r in records}
    assert spans == {trace.header().encode()}, "the call's context, unchanged (export off)"
    assert len({header(r, "ce_time") for r in records}) == 1
    ids = [header(by_key[key], "ce_id").decode() for key in keys]
    assert ids[2] == "stable-id"
    call_id = ids[0].rpartition("-")[0]
    assert ids[:2] + ids[3:] == [f"{call_id}-{i}" for i in (0, 1, 3, 4, 5)]
    for key, record in by_key.items():
        assert record.partition == partition_for(key, topic.partitions), "Kafka's default"
        assert msgspec.json.decode(record.value, type=MetricSampled).value == keys.index(key)


async def test_the_producer_is_idempotent_with_acks_all(kit):
    producer, topic, _ = kit
    await producer.publish(Outgoing(topic, "pid-probe", sample(0.0)))
    manager = producer.client._txn_manager
    assert manager is not None, "idempotence is on (aiokafka then forces acks=all)"
    assert manager.producer_id >= 0, "the broker assigned a producer id (InitProducerId worked)"


async def _count(handler: Recorder) -> int:
    return len(handler.seen)


async def _dead_letters(connection: dict, source: str) -> list:
    records = await read_all(connection["bootstrap_servers"], DLQ.name)
    return [r for r in records if header(r, "dlq_source_topic") == source.encode()]


async def _partition_of(connection: dict, topic: Topic) -> int:
    records = await read_all(connection["bootstrap_servers"], topic.name)
    assert records
    return TopicPartition(records[0].topic, records[0].partition).partition
