"""One suite, two backends: the kit's ``BatchConsumer`` and ``EventProducer`` over real
Kafka and over the in-memory twin (``opsmesh_dev.testing.kafka``) must behave the same, so a
stage tested fast over the twin is tested against what Kafka does. The twin's runs need
no infrastructure (they are not marked ``integration``)."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry
from tests.fixtures.kafka import eventually, group_offsets, header, read_all

from opsmesh.clock import SystemClock
from opsmesh.events import MetricSampled
from opsmesh.kafka import (
    BatchConsumer,
    BatchResult,
    ConsumerConfig,
    DeadLetterPublisher,
    EventProducer,
    Outgoing,
    Received,
    StatelessHandler,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.testing.kafka import InMemoryBroker, InMemoryConsumer, InMemoryProducer


class Backend(abc.ABC):
    """Where the kit's clients connect, and how a test reads the outcome."""

    connection: dict[str, Any]

    def __init__(self, topic: Topic) -> None:
        self.topic = topic

    @abc.abstractmethod
    def producer(self) -> EventProducer: ...

    @abc.abstractmethod
    def consumer_client(self, group: str) -> Any: ...

    @abc.abstractmethod
    async def committed(self, group: str) -> dict[TopicPartition, OffsetAndMetadata]: ...

    @abc.abstractmethod
    async def topic_records(self, topic: str) -> list[Any]: ...


class Memory(Backend):
    def __init__(self, topic: Topic) -> None:
        super().__init__(topic)
        self.broker = InMemoryBroker()
        self.broker.create_topics(topic, DLQ)
        self.connection = {}

    def producer(self) -> EventProducer:
        return EventProducer({}, source="/tests/twin", client=InMemoryProducer(self.broker))

    def consumer_client(self, group: str) -> Any:
        return InMemoryConsumer(self.broker, group)

    async def committed(self, group: str) -> dict[TopicPartition, OffsetAndMetadata]:
        found = {}
        for partition in range(self.topic.partitions):
            tp = TopicPartition(self.topic.name, partition)
            meta = self.broker.committed(group, tp)
            if meta is not None:
                found[tp] = meta
        return found

    async def topic_records(self, topic: str) -> list[Any]:
        return self.broker.records(topic)


class Kafka(Backend):
    def __init__(self, topic: Topic, bootstrap: str) -> None:
        super().__init__(topic)
        self.connection = {"bootstrap_servers": bootstrap}
        self.bootstrap = bootstrap

    def producer(self) -> EventProducer:
        return EventProducer(self.connection, source="/tests/twin")

    def consumer_client(self, group: str) -> Any:
        return None  # the kit builds aiokafka's

    async def committed(self, group: str) -> dict[TopicPartition, OffsetAndMetadata]:
        return await group_offsets(self.connection, group)

    async def topic_records(self, topic: str) -> list[Any]:
        return await read_all(self.bootstrap, topic)


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def bootstrap(request: pytest.FixtureRequest) -> str | None:
    """None for the twin, else the real broker's address (its fixture starts it)."""
    if request.param == "memory":
        return None
    return str(request.getfixturevalue("infra").kafka_bootstrap)


@pytest.fixture
async def backend(bootstrap: str | None, unique: str) -> AsyncIterator[Backend]:
    topic = Topic(f"test.twin.{unique}", 2, "test")
    if bootstrap is None:
        yield Memory(topic)
        return
    kafka = Kafka(topic, bootstrap)
    await ensure_topics(kafka.connection, [topic, DLQ])
    yield kafka


@dataclass
class Recorder(StatelessHandler):
    poison: set[float] = field(default_factory=set)
    hold: dict[tuple[str, int], int] = field(default_factory=dict)
    seen: list[float] = field(default_factory=list)
    restored: list[dict[tuple[str, int], str]] = field(default_factory=list)

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        values = [r.event.value for r in batch]
        if self.poison.intersection(values):
            raise ValueError(f"refuses {sorted(self.poison.intersection(values))}")
        self.seen.extend(values)
        return BatchResult(
            hold_from=dict(self.hold),
            commit_metadata={r.partition: f"last={r.event.value:g}" for r in batch},
        )

    async def on_committed_metadata(self, metadata: dict[tuple[str, int], str]) -> None:
        self.restored.append(dict(metadata))


def sample(value: float) -> MetricSampled:
    return MetricSampled(name="cpu", value=value, labels={"host": "a"}, sampled_at=1.0)


class Running:
    def __init__(self, backend: Backend, group: str, handler: Recorder) -> None:
        self.backend = backend
        self.group = group
        self.handler = handler
        self.stop = asyncio.Event()
        self.producer = backend.producer()
        registry = CollectorRegistry()
        self.consumer = BatchConsumer(
            connection=backend.connection,
            config=ConsumerConfig(
                group_id=group, topics=(backend.topic,), retry_initial_s=0.01, retry_max_s=0.05
            ),
            event_type=MetricSampled,
            handler=handler,
            dead_letters=DeadLetterPublisher(
                self.producer, service="tests", clock=SystemClock(), registry=registry
            ),
            registry=registry,
            client_id=group,
            client=backend.consumer_client(group),
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        await self.producer.start()
        self.task = asyncio.create_task(self.consumer.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task
        await self.producer.stop()


async def _publish(backend: Backend, values: Sequence[float], key: str = "k") -> None:
    producer = backend.producer()
    await producer.start()
    try:
        await producer.publish_many(Outgoing(backend.topic, key, sample(v)) for v in values)
    finally:
        await producer.stop()


async def _seen(handler: Recorder) -> list[float]:
    return list(handler.seen)


async def _offsets(backend: Backend, group: str) -> int:
    return sum(meta.offset for meta in (await backend.committed(group)).values())


async def test_records_are_handled_bad_ones_dead_lettered_and_all_committed(
    backend: Backend, unique: str
) -> None:
    await _publish(backend, [float(i) for i in range(10)])
    producer = backend.producer()
    await producer.start()
    try:
        await (await producer.send_raw(backend.topic.name, b"bad", b'{"name": ', [("o", b"t")]))
    finally:
        await producer.stop()
    group = f"g.{unique}"
    handler = Recorder()
    async with Running(backend, group, handler):
        await eventually(lambda: _seen(handler), until=lambda s: len(s) == 10, what="records")
        await eventually(lambda: _offsets(backend, group), until=lambda n: n == 11, what="commits")
    assert sorted(handler.seen) == [float(i) for i in range(10)]
    dead = [
        r
        for r in await backend.topic_records(DLQ.name)
        if header(r, "dlq_source_topic") == backend.topic.name.encode()
    ]
    assert [(r.key, header(r, "dlq_reason"), header(r, "o")) for r in dead] == [
        (b"bad", b"invalid_json", b"t")
    ]


async def test_a_poison_record_is_isolated_and_the_partition_committed_past_it(
    backend: Backend, unique: str
) -> None:
    await _publish(backend, [1.0, 2.0, 3.0, 4.0, 5.0])  # one key: one partition, in order
    group = f"g.{unique}"
    handler = Recorder(poison={3.0})
    async with Running(backend, group, handler):
        await eventually(lambda: _offsets(backend, group), until=lambda n: n == 5, what="commit")
    assert sorted(set(handler.seen)) == [1.0, 2.0, 4.0, 5.0]
    dead = [
        r
        for r in await backend.topic_records(DLQ.name)
        if header(r, "dlq_source_topic") == backend.topic.name.encode()
    ]
    assert [header(r, "dlq_reason") for r in dead] == [b"handler_failed"]
    assert header(dead[0], "dlq_error_class") == b"builtins.ValueError"


async def test_held_offsets_are_committed_only_once_released(backend: Backend, unique: str) -> None:
    await _publish(backend, [float(i) for i in range(6)])
    group = f"g.{unique}"
    handler = Recorder()
    async with Running(backend, group, handler):
        committed = await eventually(
            lambda: backend.committed(group),
            until=lambda c: any(m.offset == 6 for m in c.values()),
            what="the six records (one key: one partition) committed",
        )
        partition = next(tp for tp, meta in committed.items() if meta.offset == 6)
        handler.hold = {(partition.topic, partition.partition): 6}
        await _publish(backend, [float(i) for i in range(6, 9)])
        await eventually(lambda: _seen(handler), until=lambda s: len(s) == 9, what="more")
        # held from offset 6: the commit stays at 6 while the handler holds
        assert (await backend.committed(group))[partition].offset == 6
        handler.hold = {}
        await _publish(backend, [9.0])
        await eventually(lambda: _offsets(backend, group), until=lambda n: n == 10, what="release")


async def test_commit_metadata_comes_back_on_the_next_assignment(
    backend: Backend, unique: str
) -> None:
    await _publish(backend, [1.0, 2.0, 3.0])
    group = f"g.{unique}"
    first = Recorder()
    async with Running(backend, group, first):
        await eventually(lambda: _offsets(backend, group), until=lambda n: n == 3, what="commit")
    assert first.restored
    assert set(first.restored[0].values()) == {""}
    (meta,) = [m for m in (await backend.committed(group)).values() if m.offset]
    assert meta.metadata == "last=3"
    second = Recorder()
    async with Running(backend, group, second):
        await eventually(lambda: _restored(second), until=bool, what="metadata restored")
    assert "last=3" in second.restored[0].values()
    assert second.seen == [], "nothing replayed after a clean stop"


async def _restored(handler: Recorder) -> list[dict[tuple[str, int], str]]:
    return list(handler.restored)
