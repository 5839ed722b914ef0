"""The kit commits a handler's per-partition metadata with the offset and hands it back,
on the next assignment, to handlers that ask for it (``CommitMetadataAware``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from tests.fixtures.kafka import eventually, group_offsets, run_consumer

from opsmesh.events import MetricSampled
from opsmesh.kafka import (
    BatchResult,
    EventProducer,
    Outgoing,
    Received,
    StatelessHandler,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


@dataclass
class Marking(StatelessHandler):
    seen: int = 0
    restored: list[dict[tuple[str, int], str]] = field(default_factory=list)

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        self.seen += len(batch)
        return BatchResult(
            commit_metadata={r.partition: f"wm={r.event.value:g}" for r in batch},
        )

    async def on_committed_metadata(self, metadata: dict[tuple[str, int], str]) -> None:
        self.restored.append(dict(metadata))


async def _run(connection: dict, topic: Topic, group: str, handler: Marking) -> None:
    producer = EventProducer(connection, source="/tests/kit")
    await producer.start()
    stop, task, _ = await run_consumer(connection, topic, group, handler, producer)
    try:
        await eventually(
            lambda: _seen(handler), until=lambda n: n >= 3 or bool(handler.restored), what="run"
        )
        await eventually(lambda: _seen(handler), until=lambda n: n >= 3, what="3 records")
    finally:
        stop.set()
        await task
        await producer.stop()


async def _seen(handler: Marking) -> int:
    return handler.seen


async def test_commit_metadata_round_trips_through_the_group(infra: Endpoints, unique: str):
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    topic = Topic(f"test.meta.{unique}", 1, "test")
    await ensure_topics(connection, [topic, DLQ])
    producer = EventProducer(connection, source="/tests/kit")
    await producer.start()
    try:
        await producer.publish_many(
            Outgoing(topic, "k", MetricSampled(name="m", value=v, sampled_at=1.0))
            for v in (1, 2, 3)
        )
    finally:
        await producer.stop()
    group = f"g.{unique}"
    first = Marking()
    await _run(connection, topic, group, first)
    assert first.restored == [{(topic.name, 0): ""}], "nothing committed before"

    (meta,) = (await group_offsets(connection, group)).values()
    assert (meta.offset, meta.metadata) == (3, "wm=3")

    second = Marking()
    producer = EventProducer(connection, source="/tests/kit")
    await producer.start()
    try:
        await producer.publish_many(
            Outgoing(topic, "k", MetricSampled(name="m", value=v, sampled_at=1.0))
            for v in (4, 5, 6)
        )
    finally:
        await producer.stop()
    await _run(connection, topic, group, second)
    assert second.restored[0] == {(topic.name, 0): "wm=3"}
