"""The kit tells handlers that ask (``ProgressAware``) which partitions it has not handed
over in full, from the broker's own answer: a partition is lagging while records wait
on the broker, also while the handler is stuck retrying a batch, and read to its end
once the last record was handed over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from tests.fixtures.kafka import eventually, run_consumer

from opsmesh.events import MetricSampled
from opsmesh.kafka import BatchResult, EventProducer, Outgoing, Received, StatelessHandler
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.handler import Partition, ReadProgress
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


@dataclass
class Watching(StatelessHandler):
    """Notes, at every call with records, the last offset handed over and what lags;
    refuses every call while ``down`` (its database stopped)."""

    down: bool = False
    progress: ReadProgress | None = None
    calls: list[tuple[int, set[Partition]]] = field(default_factory=list)
    handled: list[int] = field(default_factory=list)

    def watch_progress(self, progress: ReadProgress) -> None:
        self.progress = progress

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        assert self.progress is not None, "given before the first batch"
        if batch:
            self.calls.append((batch[-1].offset, self.progress.lagging()))
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        self.handled.extend(r.offset for r in batch)
        return BatchResult()


async def _publish(connection: dict, topic: Topic, values: Sequence[int]) -> None:
    producer = EventProducer(connection, source="/tests/kit")
    await producer.start()
    try:
        await producer.publish_many(
            Outgoing(topic, "k", MetricSampled(name="m", value=v, sampled_at=1.0)) for v in values
        )
    finally:
        await producer.stop()


async def _run(connection: dict, topic: Topic, group: str, handler: Watching, **config):
    producer = EventProducer(connection, source="/tests/kit")
    await producer.start()
    stop, task, _ = await run_consumer(connection, topic, group, handler, producer, **config)
    return stop, task, producer


async def test_lagging_until_the_last_record_is_handed_over(infra: Endpoints, unique: str):
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    topic = Topic(f"test.progress.{unique}", 1, "test")
    await ensure_topics(connection, [topic, DLQ])
    await _publish(connection, topic, range(10))
    handler = Watching()
    stop, task, producer = await _run(connection, topic, f"g.{unique}", handler, max_records=4)
    try:
        await eventually(
            _async(lambda: len(handler.handled)), until=lambda n: n == 10, what="10 records"
        )
    finally:
        stop.set()
        await task
        await producer.stop()
    partition = (topic.name, 0)
    assert handler.calls[-1] == (9, set()), "read to its end"
    assert all(partition in lagging for offset, lagging in handler.calls if offset < 9)


async def test_lagging_while_the_handler_is_stuck_and_records_pile_up(
    infra: Endpoints, unique: str
):
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    topic = Topic(f"test.progress.{unique}", 1, "test")
    await ensure_topics(connection, [topic, DLQ])
    await _publish(connection, topic, range(3))
    handler = Watching(down=True)
    stop, task, producer = await _run(connection, topic, f"g.{unique}", handler)
    partition = (topic.name, 0)
    try:
        await eventually(_async(lambda: len(handler.calls)), until=bool, what="a first call")
        assert handler.calls[0] == (2, set()), "everything handed over: not lagging"
        # While the same batch is retried, records arrive on the broker behind it.
        await _publish(connection, topic, range(3, 6))
        await eventually(
            _async(lambda: handler.calls[-1]),
            until=lambda call: partition in call[1],
            what="the retried batch to see the partition lagging",
        )
        assert handler.handled == []
        handler.down = False
        await eventually(
            _async(lambda: list(handler.handled)),
            until=lambda handled: handled == list(range(6)),
            what="every record handled once the handler is back",
        )
    finally:
        stop.set()
        await task
        await producer.stop()
    assert handler.calls[-1] == (5, set())


def _async(read):  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        return read()

    return probe
