"""The Kafka half of ``opsmesh backup``: every record of the chosen topics (partition,
offset, timestamp, key, value, headers) as JSON lines, base64 for the bytes, and each
consumer group's committed position in them.

A restore produces the records back to the same partitions, in order, so per-key order
survives. Their offsets differ from the originals (a recreated topic starts at 0; a topic
that kept records appends after them), so each group's position is carried over record
by record: a group that had committed old offset ``c`` resumes at the restored copy of the
first record at or after ``c``. The services find their inputs where they left them at the
time of the backup, matching the database restored beside them.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata, RecordMetadata

from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import (
    GROUP_ALERT_DISPATCH,
    GROUP_ALERT_ENGINE,
    GROUP_HEALTH_AGGREGATOR,
    GROUP_METRICS_INGEST,
    GROUP_NOTIFIER,
    GROUP_QUERY_ANALYZER,
)

MESH_GROUPS = (
    GROUP_METRICS_INGEST,
    GROUP_QUERY_ANALYZER,
    GROUP_HEALTH_AGGREGATOR,
    GROUP_ALERT_ENGINE,
    GROUP_ALERT_DISPATCH,
    GROUP_NOTIFIER,
)
# {"partitions": {topic: count}, "groups": {group: {topic: {partition: offset}}}}
MANIFEST = "manifest.json"

Positions = dict[str, dict[str, dict[str, int]]]


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer._client.force_metadata_update()  # aiokafka's only refresh
        found = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(found or ())]


async def _group_positions(bootstrap: str, groups: Iterable[str], topics: set[str]) -> Positions:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        known = {group for group, _ in await admin.list_consumer_groups()}
        positions: Positions = {}
        for group in groups:
            if group not in known:
                continue
            committed = await admin.list_consumer_group_offsets(group)
            for tp, meta in committed.items():
                if tp.topic in topics and meta.offset >= 0:
                    by_topic = positions.setdefault(group, {}).setdefault(tp.topic, {})
                    by_topic[str(tp.partition)] = meta.offset
        return positions
    finally:
        await admin.close()


def _row(r: Any) -> str:
    return json.dumps(
        {
            "partition": r.partition,
            "offset": r.offset,
            "timestamp_ms": r.timestamp,
            "key": _b64(r.key),
            "value": _b64(r.value),
            "headers": [[k, _b64(v)] for k, v in r.headers],
        }
    )


async def export_topics(
    bootstrap: str, topics: Iterable[str], groups: Iterable[str], target: Path
) -> dict[str, int]:
    """Every record now in each topic, to ``target/<topic>.jsonl``, and the groups'
    positions (read first: a group moving on during the export resumes a little early,
    never past a record the backup lacks); records per topic."""
    topics = list(topics)
    positions = await _group_positions(bootstrap, groups, set(topics))
    counts: dict[str, int] = {}
    partition_counts: dict[str, int] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        for topic in topics:
            partitions = await _partitions(consumer, topic)
            if not partitions:
                raise click.ClickException(f"topic {topic} does not exist on {bootstrap}")
            partition_counts[topic] = len(partitions)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            lines: list[str] = []
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, records in batch.items():
                    lines.extend(_row(r) for r in records if r.offset < ends[tp])
            await asyncio.to_thread(_write_lines, target / f"{topic}.jsonl", lines)
            counts[topic] = len(lines)
    finally:
        await consumer.stop()
    manifest = {"partitions": partition_counts, "groups": positions}
    await asyncio.to_thread(_write_lines, target / MANIFEST, [json.dumps(manifest, indent=1)])
    return counts


def _write_lines(path: Path, lines: list[str]) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in lines)


def _read(source: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text("utf-8"))
    topics = {
        path.name.removesuffix(".jsonl"): [
            json.loads(line) for line in path.read_text("utf-8").splitlines()
        ]
        for path in sorted(source.glob("*.jsonl"))
    }
    return manifest, topics


async def _create_missing(bootstrap: str, partition_counts: dict[str, int]) -> None:
    """The mesh's topics with their settings, others with the recorded partition count."""
    await ensure_topics({"bootstrap_servers": bootstrap})
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=topic, num_partitions=count, replication_factor=1)
            for topic, count in partition_counts.items()
            if topic not in existing
        ]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


# (topic, partition) -> [(old offset, new offset)] in order.
Moves = dict[tuple[str, int], list[tuple[int, int]]]


async def _produce(bootstrap: str, topics: dict[str, list[dict[str, Any]]]) -> Moves:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    sent: list[tuple[str, int, int, asyncio.Future[RecordMetadata]]] = []
    try:
        for topic, rows in topics.items():
            for row in rows:
                future = await producer.send(
                    topic,
                    value=_unb64(row["value"]),
                    key=_unb64(row["key"]),
                    partition=row["partition"],
                    timestamp_ms=row["timestamp_ms"],
                    headers=[(k, _unb64(v) or b"") for k, v in row["headers"]],
                )
                sent.append((topic, row["partition"], row["offset"], future))
        await producer.flush()
        moves: Moves = {}
        for topic, partition, old, future in sent:
            moves.setdefault((topic, partition), []).append((old, (await future).offset))
        return moves
    finally:
        await producer.stop()


def _moved(committed: int, moves: list[tuple[int, int]], end: int) -> int:
    """The new offset of the first record at or after ``committed`` (the end when the
    group had read every record the backup holds)."""
    for old, new in moves:
        if old >= committed:
            return new
    return end


async def _set_positions(bootstrap: str, positions: Positions, moves: Moves) -> None:
    for group, by_topic in positions.items():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [
                TopicPartition(topic, int(p)) for topic, parts in by_topic.items() for p in parts
            ]
            ends = await consumer.end_offsets(tps)
            offsets = {
                tp: OffsetAndMetadata(
                    _moved(
                        by_topic[tp.topic][str(tp.partition)],
                        moves.get((tp.topic, tp.partition), []),
                        ends[tp],
                    ),
                    "",
                )
                for tp in tps
            }
            consumer.assign(tps)
            await consumer.commit(offsets)
        finally:
            await consumer.stop()


async def import_topics(bootstrap: str, source: Path) -> dict[str, int]:
    """Produce every exported record back to its topic and partition, then set each
    group's position on the restored records; records per topic."""
    manifest, topics = await asyncio.to_thread(_read, source)
    await _create_missing(bootstrap, manifest["partitions"])
    moves = await _produce(bootstrap, topics)
    await _set_positions(bootstrap, manifest["groups"], moves)
    return {topic: len(rows) for topic, rows in topics.items()}
