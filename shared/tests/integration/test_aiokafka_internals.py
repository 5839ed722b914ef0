"""The aiokafka internals that need a broker (``opsmesh.kafka.aiokafka_internals``), called
against real Kafka: an upgrade that changes what they return fails here, by name."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from tests.fixtures.kafka import eventually

from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.aiokafka_internals import cluster_metadata, committed_metadata
from opsmesh.topics import Topic
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


async def test_cluster_metadata_and_committed_metadata_against_a_broker(
    infra: Endpoints, unique: str
) -> None:
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    topic = Topic(f"test.internals.{unique}", 2, "test")
    await ensure_topics(connection, [topic])
    consumer = AIOKafkaConsumer(**connection, group_id=f"g.{unique}", enable_auto_commit=False)
    await consumer.start()
    try:
        # A topic just created reaches every broker's metadata cache shortly after.
        await eventually(
            lambda: _partitions(consumer, topic.name),
            until=lambda found: found == {0, 1},
            what="AIOKafkaClient.fetch_all_metadata to list the topic's partitions",
        )
        first, second = TopicPartition(topic.name, 0), TopicPartition(topic.name, 1)
        consumer.assign([first, second])
        await consumer.commit({first: OffsetAndMetadata(0, "wm=7")})
        found = await committed_metadata(consumer, [first, second])
        assert found.get(first) == "wm=7", (
            f"GroupCoordinator.fetch_committed_offsets answered {found!r}"
        )
        assert found.get(second, "") == ""
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int] | None:
    cluster = await cluster_metadata(consumer)
    found = cluster.partitions_for_topic(topic)
    return None if found is None else set(found)
