"""``opsmesh dlq list|replay``: inspect dead letters and send them back where they came from.

A dead letter keeps the original key, value and headers and adds ``dlq_*`` headers (see
``opsmesh.kafka.dlq``). Replaying produces the original record again to its source topic,
without the ``dlq_*`` headers and with ``dlq_replayed_from`` naming the dead letter, after
the cause is fixed (a consumer bug, a receiver that was down). Consumers are idempotent
(stored offsets, delivery logs, idempotency keys), so a replay is safe to repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from opsmesh.kafka import dlq as dead
from opsmesh.kafka.aiokafka_internals import cluster_metadata
from opsmesh.topics import DLQ


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return ""

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith("dlq_")]


async def read_dead_letters(bootstrap: str) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await cluster_metadata(consumer)
        partitions = [
            TopicPartition(DLQ.name, p) for p in cluster.partitions_for_topic(DLQ.name) or ()
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[DeadLetter] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                found.extend(
                    DeadLetter(m.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
                    for m in messages
                )
        return found
    finally:
        await consumer.stop()


def select(
    letters: Sequence[DeadLetter], topic: str | None, reason: str | None
) -> list[DeadLetter]:
    return [
        d
        for d in letters
        if (topic is None or d.header(dead.HEADER_TOPIC) == topic)
        and (reason is None or d.header(dead.HEADER_REASON) == reason)
    ]


def replayable(letter: DeadLetter) -> bool:
    """Whether the dead letter holds the original record (not a truncated prefix)."""
    return not letter.header(dead.HEADER_VALUE_TRUNCATED)


async def replay(bootstrap: str, letters: Sequence[DeadLetter]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(
                d.header(dead.HEADER_TOPIC),
                key=d.key,
                value=None if d.header(dead.HEADER_VALUE_NULL) else d.value,
                headers=[
                    *d.original_headers(),
                    ("dlq_replayed_from", f"{d.partition}:{d.offset}".encode()),
                ],
            )
            for d in letters
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(letters)


@click.group()
def dlq() -> None:
    """Dead letters: what failed, why, and sending it back."""


_BOOTSTRAP = click.option(
    "--bootstrap",
    envvar="OPSMESH_KAFKA_BOOTSTRAP",
    required=True,
    help="Kafka bootstrap servers ($OPSMESH_KAFKA_BOOTSTRAP).",
)
_TOPIC = click.option("--topic", default=None, help="Only dead letters from this source topic.")
_REASON = click.option(
    "--reason",
    default=None,
    type=click.Choice([r.value for r in dead.DeadLetterReason]),
    help="Only dead letters with this reason.",
)


@dlq.command("list")
@_BOOTSTRAP
@_TOPIC
@_REASON
def list_(bootstrap: str, topic: str | None, reason: str | None) -> None:
    """Print the dead letters: where from, why, when."""
    letters = select(asyncio.run(read_dead_letters(bootstrap)), topic, reason)
    for d in letters:
        click.echo(
            f"{d.partition}:{d.offset} {d.header(dead.HEADER_TOPIC)}"
            f"[{d.header(dead.HEADER_PARTITION)}]@{d.header(dead.HEADER_OFFSET)} "
            f"{d.header(dead.HEADER_REASON)} ({d.header(dead.HEADER_SERVICE)}): "
            f"{d.header(dead.HEADER_ERROR)[:200]}"
        )
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command("replay")
@_BOOTSTRAP
@_TOPIC
@_REASON
@click.option("--apply", is_flag=True, help="Produce them; without it, only say what would be.")
def replay_(bootstrap: str, topic: str | None, reason: str | None, apply: bool) -> None:
    """Send dead letters back to their source topics (a dry run unless --apply)."""
    found = select(asyncio.run(read_dead_letters(bootstrap)), topic, reason)
    letters = [d for d in found if replayable(d)]
    if len(letters) < len(found):
        click.echo(
            f"skipping {len(found) - len(letters)} dead letter(s) whose value was truncated "
            f"({dead.HEADER_VALUE_TRUNCATED}): the original is not in the DLQ"
        )
    if not apply:
        click.echo(f"would replay {len(letters)} dead letter(s); add --apply to do it")
        return
    sent = asyncio.run(replay(bootstrap, letters))
    click.echo(f"replayed {sent} dead letter(s)")
