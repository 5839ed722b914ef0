"""The test infrastructure restarts each part with its data, as a real server restarts:
the fault suite stops and starts them under load and must find what it left there."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from tests.fixtures.kafka import eventually, group_offsets, read_all

from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import Topic
from opsmesh_dev.infra.kafka import KafkaServer
from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.infra.redis import RedisServer

pytestmark = pytest.mark.integration

TOPIC = Topic("devinfra.restart", 1, "none")


async def test_a_broker_restart_keeps_records_offsets_and_cluster_id(tmp_path: Path) -> None:
    broker = KafkaServer(tmp_path / "kafka")
    broker.start()
    try:
        cluster_id, port = broker.cluster_id(), broker.port
        connection = {"bootstrap_servers": broker.bootstrap}
        await ensure_topics(connection, [TOPIC])
        producer = AIOKafkaProducer(**connection, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(TOPIC.name, b"kept")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(**connection, group_id="kept", enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(TOPIC.name, 0)])
            await consumer.commit({TopicPartition(TOPIC.name, 0): OffsetAndMetadata(1, "m")})
        finally:
            await consumer.stop()

        broker.restart()

        assert cluster_id is not None
        assert (broker.cluster_id(), broker.port) == (cluster_id, port)
        assert [r.value for r in await read_all(broker.bootstrap, TOPIC.name)] == [b"kept"]
        # The group coordinator loads its offsets partition after the restart; until then a
        # fetch answers with no offsets (GroupCoordinatorNotAvailable), not the old ones.
        offsets = await eventually(
            lambda: group_offsets(connection, "kept"),
            until=lambda found: TopicPartition(TOPIC.name, 0) in found,
            what="the group's committed offsets after the restart",
        )
        assert offsets[TopicPartition(TOPIC.name, 0)] == OffsetAndMetadata(1, "m")
    finally:
        broker.stop()


def test_a_postgresql_restart_keeps_the_data_directory() -> None:
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as
    # its own user when we are root.
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-pg-restart-"))
    workdir.chmod(0o755)
    server = PostgresServer(workdir / "postgres")
    dsn = server.start()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('row')")
        assert server.restart() == dsn
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("row",)]
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_redis_restart_keeps_keys(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        client.set("claim", "holder", px=600_000)
        client.close()
        assert server.restart() == url
        client = redis.Redis.from_url(url)
        try:
            assert client.get("claim") == b"holder"
            assert client.pttl("claim") > 0, "the key keeps its expiry"
        finally:
            client.close()
    finally:
        server.stop()
