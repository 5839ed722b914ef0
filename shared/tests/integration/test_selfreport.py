"""The self-report over real Kafka: lag read from the broker (committed vs end offsets),
and the readings published to the signals topic as the catalogue declares them."""

from __future__ import annotations

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry
from tests.fixtures.kafka import eventually, read_all

from opsmesh import catalogue
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka import EventProducer
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.codec import decode
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason
from opsmesh.selfreport import ConsumedGroup, KafkaLagReader, SelfReporter
from opsmesh.topics import SIGNALS, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration


async def _produce(bootstrap: str, topic: str, partition: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=partition)
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


async def test_lag_is_end_minus_committed_and_grows_while_nothing_commits(
    infra: Endpoints, unique: str
) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = Topic(f"lag.{unique}", 2, "test")
    connection = {"bootstrap_servers": bootstrap}
    await ensure_topics(connection, [topic])
    group = f"lag-group.{unique}"
    await _produce(bootstrap, topic.name, 0, 10)
    await _produce(bootstrap, topic.name, 1, 3)
    await _commit(bootstrap, group, topic.name, 0, 4)
    reader = KafkaLagReader(connection)
    groups = [ConsumedGroup(group, (topic.name,))]
    # Partition 1 was never committed: all of it is behind.
    assert await reader.lag(groups) == {(group, topic.name, 0): 6, (group, topic.name, 1): 3}
    await _produce(bootstrap, topic.name, 0, 5)  # a stalled consumer: more arrives, no commit
    assert (await reader.lag(groups))[(group, topic.name, 0)] == 11


async def test_the_reporter_publishes_its_readings_to_the_signals_topic(
    infra: Endpoints, unique: str
) -> None:
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    topic = Topic(f"report.{unique}", 1, "test")
    await ensure_topics(connection, [topic, SIGNALS])
    await _produce(infra.kafka_bootstrap, topic.name, 0, 2)
    clock = FakeClock()
    producer = EventProducer(connection, source="/tests/selfreport", clock=clock)
    await producer.start()
    try:
        dead_letters = DeadLetterPublisher(
            producer, service="notifier", clock=clock, registry=CollectorRegistry()
        )
        dead_letters.records_total.labels(topic.name, DeadLetterReason.DELIVERY_FAILED.value).inc()
        instance = f"n-{unique}"
        reporter = SelfReporter(
            service="notifier",
            instance=instance,
            dead_letters=lambda: dead_letters.records_total,
            groups=lambda: [ConsumedGroup(f"g.{unique}", (topic.name,))],
            lag=KafkaLagReader(connection),
            producer=lambda: producer,
            clock=clock,
            interval_s=60,
        )
        assert await reporter.report_once() == 2
    finally:
        await producer.stop()

    async def mine() -> list[SignalObserved]:
        records = await read_all(infra.kafka_bootstrap, SIGNALS.name)
        found = []
        for record in records:
            try:
                event = decode(SignalObserved, record.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # other tests put bad records on the topic on purpose
            if unique in event.subject:
                found.append(event)
        return found

    signals = await eventually(mine, until=lambda s: len(s) == 2, what="the two readings")
    by_name = {s.name: s for s in signals}
    dead = by_name[catalogue.MESH_DEAD_LETTERS.name]
    assert (dead.value, dead.labels["source_topic"], dead.labels["instance"]) == (
        1.0,
        topic.name,
        instance,
    )
    lag = by_name[catalogue.MESH_CONSUMER_LAG.name]
    assert (lag.value, lag.labels["topic"], lag.labels["partition"]) == (2.0, topic.name, "0")
    assert all(catalogue.problems(s) == [] for s in signals)
