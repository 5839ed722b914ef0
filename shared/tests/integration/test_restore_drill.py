"""The disaster-recovery drill (runbooks/disaster-recovery.md): back up the mesh's state
with ``opsmesh backup create``, lose it, ``opsmesh backup restore``, and find it all back:
the services' rows in PostgreSQL (every schema, migrations applied) and the Kafka records
with their keys, headers, timestamps and partitions.

It runs on a database of its own (created on the session's server, every migration
applied) and topics of its own, so wiping them touches no other test's state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from click.testing import CliRunner
from psycopg import sql
from psycopg.conninfo import make_conninfo
from tests.fixtures.kafka import eventually, read_all

from opsmesh.cli.backup import SCHEMAS
from opsmesh.cli.main import cli
from opsmesh.db.migrations import apply_all
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration

CHECK = ("checkout", "checkout-1", "db", "critical", True, "connection refused", 1.0e9, 1.0e9 + 60)


@pytest.fixture
def drill_dsn(infra: Endpoints, unique: str) -> Iterator[str]:
    name = f"drill_{unique}"
    with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(infra.pg_dsn, dbname=name)
    finally:
        with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def _produce(bootstrap: str, topic: str, count: int = 30, *, to: int | None = None) -> None:
    """A new 3-partition topic and ``count`` records (spread, or all to partition ``to``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(
                topic,
                value=f'{{"n": {i}}}'.encode() if i % 10 else None,  # a tombstone too
                key=f"k{i % 7}".encode(),
                partition=i % 3 if to is None else to,
                timestamp_ms=1_700_000_000_000 + i,
                headers=[("dlq_reason", b"invalid_json"), ("binary", bytes([0, 255, i]))],
            )
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}
    finally:
        await admin.close()


async def _delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        for _ in range(100):  # deletion is asynchronous on the broker
            if topic not in await admin.list_topics():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"topic {topic} was not deleted")
    finally:
        await admin.close()


# (partition, offset, timestamp, key, value, headers)
Record = tuple[int, int, int, bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]


def _records(bootstrap: str, topic: str, count: int) -> list[Record]:
    """The topic's records, ``count`` of them (waited for: a just-created topic's metadata
    may lag), as (partition, offset, timestamp, key, value, headers)."""

    async def read() -> list[Record]:
        return sorted(
            (r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers))
            for r in await read_all(bootstrap, topic)
        )

    return asyncio.run(eventually(read, until=lambda rows: len(rows) >= count, what=topic))


def _state(dsn: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with psycopg.connect(dsn) as conn:
        checks = conn.execute("SELECT * FROM health_aggregator.checks").fetchall()
        migrations = conn.execute(
            "SELECT component, version FROM opsmesh_schema_migrations ORDER BY 1, 2"
        ).fetchall()
    return checks, migrations


def test_backup_wipe_restore_brings_the_state_back(
    infra: Endpoints, drill_dsn: str, unique: str, tmp_path: Path
) -> None:
    bootstrap, topic = infra.kafka_bootstrap, f"test.drill.{unique}"
    asyncio.run(apply_all(drill_dsn))
    with psycopg.connect(drill_dsn) as conn:
        conn.execute(
            "INSERT INTO health_aggregator.checks VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", CHECK
        )
    asyncio.run(_produce(bootstrap, topic))
    # A consumer group part-way through partition 0, done with 1, never on 2.
    group = f"test.drill.{unique}"
    position = {TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 10}
    asyncio.run(_commit(bootstrap, group, position))
    assert asyncio.run(_committed(bootstrap, group)) == position
    before_pg, before_kafka = _state(drill_dsn), _records(bootstrap, topic, 30)
    assert before_pg[0]
    assert len(before_kafka) == 30

    env = {"OPSMESH_PG_DSN": drill_dsn, "OPSMESH_KAFKA_BOOTSTRAP": bootstrap}
    runner = CliRunner()
    backup = tmp_path / "backup"
    created = runner.invoke(
        cli, ["backup", "create", str(backup), "--topic", topic, "--group", group], env=env
    )
    assert created.exit_code == 0, created.output
    assert f"kafka: {topic}: 30 records" in created.output

    # The disaster: every service schema and the bookkeeping gone, the topic deleted.
    with psycopg.connect(drill_dsn, autocommit=True) as conn:
        for schema in SCHEMAS:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        conn.execute("DROP TABLE opsmesh_schema_migrations, opsmesh_applied_offsets")
    asyncio.run(_delete_topic(bootstrap, topic))
    # The topic is back (empty broker, recreated) and took 5 new records on partition 0
    # before the restore: the restored copies land after them, at moved offsets.
    asyncio.run(_produce(bootstrap, topic, 5, to=0))

    restored = runner.invoke(cli, ["backup", "restore", str(backup)], env=env)
    assert restored.exit_code == 0, restored.output
    assert _state(drill_dsn) == before_pg
    # Same partitions, timestamps, keys, values (the tombstones too) and headers; on
    # partition 0 five offsets later than before, behind the new records.
    after = _records(bootstrap, topic, 35)
    moved = [(p, o + 5 if p == 0 else o, t, k, v, h) for p, o, t, k, v, h in before_kafka]
    assert [r for r in after if not (r[0] == 0 and r[1] < 5)] == sorted(moved)
    # The group resumes at the same record it was at when the backup was taken.
    assert asyncio.run(_committed(bootstrap, group)) == {
        TopicPartition(topic, 0): 4 + 5,
        TopicPartition(topic, 1): 10,
    }
    # Migrations see the restored schema as current: nothing to apply again.
    assert asyncio.run(apply_all(drill_dsn)) == {
        component: [] for component in asyncio.run(apply_all(drill_dsn))
    }
