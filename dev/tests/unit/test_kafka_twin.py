"""The in-memory Kafka twin (``opsmesh_dev.testing.kafka``) on its own, and the kit's real
``BatchConsumer`` driven over it through what a broker test would take seconds to set up:
a rebalance between two members, offsets with gaps, commits refused after a rebalance.
What the twin shares with Kafka is held by ``test_kafka_twin_contract``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, MessageSizeTooLargeError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry
from tests.fixtures.kafka import eventually

from opsmesh.clock import SystemClock
from opsmesh.events import MetricSampled
from opsmesh.kafka import (
    BatchConsumer,
    BatchResult,
    ConsumerConfig,
    DeadLetterPublisher,
    EventProducer,
    Received,
)
from opsmesh.kafka.codec import encode
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.testing.kafka import InMemoryBroker, InMemoryConsumer, InMemoryProducer

TOPIC = Topic("test.twin", 2, "test")
P0, P1 = TopicPartition(TOPIC.name, 0), TopicPartition(TOPIC.name, 1)


@dataclass
class Listener:
    calls: list[tuple[str, set[TopicPartition]]] = field(default_factory=list)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.calls.append(("revoked", revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.calls.append(("assigned", assigned))


@pytest.fixture
def broker() -> InMemoryBroker:
    broker = InMemoryBroker()
    broker.create_topics(TOPIC, DLQ)
    return broker


def append(broker: InMemoryBroker, partition: int, value: float) -> int:
    event = MetricSampled(name="cpu", value=value, sampled_at=1.0)
    return broker.append(TOPIC.name, partition, key=b"k", value=encode(event))


async def test_members_share_partitions_and_rebalance_eagerly(broker: InMemoryBroker) -> None:
    first, second = InMemoryConsumer(broker, "g"), InMemoryConsumer(broker, "g")
    one, two = Listener(), Listener()
    first.subscribe(topics=[TOPIC.name], listener=one)  # type: ignore[arg-type]
    await first.getmany(timeout_ms=0)
    assert first.assignment() == {P0, P1}
    second.subscribe(topics=[TOPIC.name], listener=two)  # type: ignore[arg-type]
    await first.getmany(timeout_ms=0)
    assert first.assignment() == set(), "revoked; waits for every member to rejoin"
    await second.getmany(timeout_ms=0)
    await first.getmany(timeout_ms=0)
    assert first.assignment() == {P0}
    assert second.assignment() == {P1}
    assert one.calls == [
        ("revoked", set()),
        ("assigned", {P0, P1}),
        ("revoked", {P0, P1}),
        ("assigned", {P0}),
    ]
    await second.stop()
    await first.getmany(timeout_ms=0)
    assert first.assignment() == {P0, P1}


async def test_a_member_resumes_from_the_groups_commit(broker: InMemoryBroker) -> None:
    for value in range(5):
        append(broker, 0, value)
    consumer = InMemoryConsumer(broker, "g")
    consumer.subscribe(topics=[TOPIC.name], listener=Listener())  # type: ignore[arg-type]
    got = await consumer.getmany(timeout_ms=0, max_records=3)
    assert [r.offset for r in got[P0]] == [0, 1, 2]
    await consumer.commit({P0: (3, "meta")})
    await consumer.stop()
    again = InMemoryConsumer(broker, "g")
    again.subscribe(topics=[TOPIC.name], listener=Listener())  # type: ignore[arg-type]
    got = await again.getmany(timeout_ms=0)
    assert [r.offset for r in got[P0]] == [3, 4]
    assert await again.committed_metadata([P0, P1]) == {P0: "meta"}


async def test_commits_are_refused_for_partitions_not_assigned_or_after_leaving(
    broker: InMemoryBroker,
) -> None:
    first = InMemoryConsumer(broker, "g")
    first.subscribe(topics=[TOPIC.name], listener=Listener())  # type: ignore[arg-type]
    await first.getmany(timeout_ms=0)
    InMemoryConsumer(broker, "g").subscribe(topics=[TOPIC.name], listener=Listener())  # type: ignore[arg-type]
    await first.commit({P0: 1})  # a rebalance pending: still its partitions until it rejoins
    await first.getmany(timeout_ms=0)  # revoked
    with pytest.raises(IllegalStateError):
        await first.commit({P0: 2})
    await first.stop()
    with pytest.raises(CommitFailedError):
        await first.commit({})
    assert broker.committed("g", P0) == OffsetAndMetadata(1, "")


async def test_getmany_wakes_when_a_record_arrives(broker: InMemoryBroker) -> None:
    consumer = InMemoryConsumer(broker, "g")
    consumer.subscribe(topics=[TOPIC.name], listener=Listener())  # type: ignore[arg-type]
    await consumer.getmany(timeout_ms=0)
    waiting = asyncio.create_task(consumer.getmany(timeout_ms=60_000))
    await asyncio.sleep(0)  # one turn of the loop: the poll runs up to its wait
    assert not waiting.done()
    append(broker, 1, 1.0)
    got = await asyncio.wait_for(waiting, timeout=5)
    assert [r.offset for r in got[P1]] == [0]


async def test_the_producer_partitions_by_key_and_enforces_its_size_limit(
    broker: InMemoryBroker,
) -> None:
    producer = InMemoryProducer(broker, max_request_size=1_000)
    await (await producer.send(TOPIC.name, key=b"a", value=b"x"))
    await (await producer.send(TOPIC.name, key=b"a", value=b"y"))
    (partition,) = {r.partition for r in broker.records(TOPIC.name)}
    assert [r.value for r in broker.records(TOPIC.name, partition)] == [b"x", b"y"]
    with pytest.raises(MessageSizeTooLargeError):
        await producer.send(TOPIC.name, key=b"a", value=bytes(2_000))
    producer.fail_next(ConnectionError("down"))
    with pytest.raises(ConnectionError):
        await (await producer.send(TOPIC.name, key=b"a", value=b"z"))


# --- the kit's BatchConsumer over the twin --------------------------------------------


@dataclass
class Recorder:
    seen: list[tuple[int, int]] = field(default_factory=list)
    revoked: list[set[tuple[str, int]]] = field(default_factory=list)

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        self.seen.extend((r.message.partition, r.offset) for r in batch)
        return BatchResult()

    async def on_assigned(self, partitions: set[tuple[str, int]]) -> None:
        return None

    async def on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        self.revoked.append(set(partitions))


def batch_consumer(
    broker: InMemoryBroker, group: str, handler: Recorder, *, commit_interval_s: float = 0.0
) -> BatchConsumer[MetricSampled]:
    registry = CollectorRegistry()
    producer = EventProducer({}, source="/tests/twin", client=InMemoryProducer(broker))
    return BatchConsumer(
        connection={},
        config=ConsumerConfig(group_id=group, topics=(TOPIC,), commit_interval_s=commit_interval_s),
        event_type=MetricSampled,
        handler=handler,
        dead_letters=DeadLetterPublisher(
            producer, service="tests", clock=SystemClock(), registry=registry
        ),
        registry=registry,
        client_id=group,
        client=InMemoryConsumer(broker, group),
    )


async def _committed(broker: InMemoryBroker) -> dict[int, int]:
    found = {tp.partition: broker.committed("g", tp) for tp in (P0, P1)}
    return {p: meta.offset for p, meta in found.items() if meta is not None}


async def _handled(*handlers: Recorder) -> list[tuple[int, int]]:
    return sorted(x for h in handlers for x in h.seen)


async def test_a_rebalance_commits_before_revoking_so_no_record_is_handled_twice(
    broker: InMemoryBroker,
) -> None:
    for value in range(10):
        append(broker, value % 2, value)
    first, second = Recorder(), Recorder()
    stops = [asyncio.Event(), asyncio.Event()]
    # No periodic commits: only the commit before a revocation (and on stop) saves the
    # new owner from handling the records again.
    one = asyncio.create_task(
        batch_consumer(broker, "g", first, commit_interval_s=3600).run(stops[0])
    )
    await eventually(lambda: _handled(first), until=lambda s: len(s) == 10, what="first")
    for value in range(10, 20):  # handled, and not committed before the rebalance
        append(broker, value % 2, value)
    await eventually(lambda: _handled(first), until=lambda s: len(s) == 20, what="more")
    two = asyncio.create_task(
        batch_consumer(broker, "g", second, commit_interval_s=3600).run(stops[1])
    )
    await eventually(lambda: _revoked(first), until=bool, what="rebalance")
    for value in range(20, 30):
        append(broker, value % 2, value)
    await eventually(
        lambda: _handled(first, second), until=lambda s: len(s) >= 30, what="both members"
    )
    for stop in stops:
        stop.set()
    await asyncio.gather(one, two)
    assert await _committed(broker) == {0: 15, 1: 15}
    handled = await _handled(first, second)
    assert handled == sorted(set(handled)), "no record handled twice"
    assert (await _revoked(first))[0] == {(TOPIC.name, 0), (TOPIC.name, 1)}
    assert second.seen, "the second member got a partition"


async def _revoked(handler: Recorder) -> list[set[tuple[str, int]]]:
    return [r for r in handler.revoked if r]  # the first join revokes nothing


async def test_offsets_with_gaps_are_committed_past_the_last_record(
    broker: InMemoryBroker,
) -> None:
    append(broker, 0, 1.0)
    broker.skip(TOPIC.name, 0, 5)  # compacted away, or transaction markers
    last = append(broker, 0, 2.0)
    assert last == 6
    handler = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(batch_consumer(broker, "g", handler).run(stop))
    await eventually(lambda: _committed(broker), until=lambda c: c.get(0) == 7, what="commit")
    stop.set()
    await task
    assert handler.seen == [(0, 0), (0, 6)]
