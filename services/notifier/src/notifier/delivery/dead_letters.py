"""The notifier's dead letters, read from the shared DLQ topic, and their replay.

The DLQ (``opsmesh.dlq``) is shared by every service, so only letters whose source topic
is this notifier's requests topic (or its CDN purges topic) are its own. Reads look at
the newest ``scan`` records of each DLQ partition (a bound: the topic keeps 30 days),
from a short-lived consumer without a group (it commits nothing). A replay sends the
original record back to the topic it came from as ``opsmesh dlq replay`` does (original
key, value and headers, plus ``dlq_replayed_from``); the delivery log then skips the
integrations (or CDN providers) that had succeeded, so only the failed ones are tried
again, and replaying twice sends nothing twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from notifier.core.purge_plan import PURGE_RECEIVER, purge_key
from opsmesh.kafka import dlq as dead
from opsmesh.kafka.aiokafka_internals import cluster_metadata
from opsmesh.kafka.producer import EventProducer
from opsmesh.topics import DLQ

# "<integration>: <failure>: <detail>", as the deliver stage writes a failed delivery's
# reason (integrations are named "<kind>-<index>"), and the purge stage a failed purge's
# ("cdn:<provider>", notifier.core.purge_plan.integration).
_INTEGRATION = re.compile(r"^([a-z]+-[0-9]+|cdn:[a-z0-9][a-z0-9_.-]*): ")
_ID = re.compile(r"^([0-9]{1,6})-([0-9]{1,19})$")
FETCH_TIMEOUT_MS = 2000


class LetterNotFound(LookupError):
    """No dead letter of this notifier at that id."""


class NotReplayable(ValueError):
    """The letter kept only a prefix of the request (it was too large for the DLQ)."""


@dataclass(frozen=True, slots=True)
class Letter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def id(self) -> str:
        return f"{self.partition}-{self.offset}"

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return ""

    @property
    def integration(self) -> str | None:
        found = _INTEGRATION.match(self.header(dead.HEADER_ERROR))
        return found.group(1) if found else None

    @property
    def replayable(self) -> bool:
        return not self.header(dead.HEADER_VALUE_TRUNCATED)

    def request(self) -> dict[str, Any]:
        """What the request says (receiver, group, reason, alerts), as far as it decodes:
        a letter can hold a request that failed its schema."""
        try:
            body = msgspec.json.decode(self.value or b"")
        except msgspec.DecodeError:
            return {}
        if not isinstance(body, dict):
            return {}
        if isinstance(body.get("id"), str) and isinstance(body.get("scope"), str):
            return _purge(body)
        alerts = body.get("alerts")
        fingerprints = (
            [a.get("fingerprint") for a in alerts if isinstance(a, dict)]
            if isinstance(alerts, list)
            else []
        )
        out: dict[str, Any] = {
            name: body[name]
            for name in ("idempotency_key", "receiver", "group_key", "status")
            if isinstance(body.get(name), str)
        }
        if isinstance(body.get("reason"), str):  # why the engine notified, not why it failed
            out["notify_reason"] = body["reason"]
        out["fingerprints"] = [f for f in fingerprints if isinstance(f, str)]
        return out

    def json(self) -> dict[str, Any]:
        failed_at = self.header(dead.HEADER_FAILED_AT)
        try:
            at: float | None = float(failed_at)
        except ValueError:
            at = None
        return {
            "id": self.id,
            "reason": self.header(dead.HEADER_REASON),
            "error": self.header(dead.HEADER_ERROR),
            "integration": self.integration,
            "failed_at": at,
            "replayable": self.replayable,
            "replayed_from": self.header("dlq_replayed_from") or None,
            **self.request(),
        }


def _purge(body: dict[str, Any]) -> dict[str, Any]:
    """A CDN purge's letter, in the delivery log's terms (its key and receiver)."""
    out: dict[str, Any] = {
        "idempotency_key": purge_key(body["id"]),
        "receiver": PURGE_RECEIVER,
        "purge_id": body["id"],
        "scope": body["scope"],
    }
    for name in ("values", "providers"):
        if isinstance(body.get(name), list):
            out[name] = [v for v in body[name] if isinstance(v, str)][:100]
    return out


async def _partitions(consumer: AIOKafkaConsumer) -> set[int]:
    cluster = await cluster_metadata(consumer)
    return set(cluster.partitions_for_topic(DLQ.name) or ())


def parse_id(text: str) -> tuple[int, int]:
    found = _ID.match(text)
    if found is None:
        raise LetterNotFound(f"a dead letter id is <partition>-<offset>, not {text[:40]!r}")
    return int(found.group(1)), int(found.group(2))


class DeadLetters:
    def __init__(
        self,
        connection: dict[str, Any],
        producer: EventProducer,
        *,
        source_topics: tuple[str, ...],
    ) -> None:
        self._connection = connection
        self._producer = producer
        self._sources = source_topics

    def _ours(self, letter: Letter) -> bool:
        return letter.header(dead.HEADER_TOPIC) in self._sources

    async def recent(self, scan: int) -> list[Letter]:
        """This notifier's letters among the newest ``scan`` of each partition, newest
        first."""
        consumer = AIOKafkaConsumer(**self._connection, enable_auto_commit=False)
        await consumer.start()
        try:
            numbers = await _partitions(consumer)
            partitions = [TopicPartition(DLQ.name, p) for p in sorted(numbers)]
            if not partitions:
                return []
            consumer.assign(partitions)
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, max(starts[tp], ends[tp] - scan))
            found: list[Letter] = []
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
                if not batch:
                    break  # the broker gave nothing within the wait: show what was read
                for messages in batch.values():
                    for m in messages:
                        if m.offset >= ends[TopicPartition(DLQ.name, m.partition)]:
                            continue
                        letter = Letter(
                            m.partition, m.offset, m.key, m.value, tuple(m.headers or ())
                        )
                        if self._ours(letter):
                            found.append(letter)
        finally:
            await consumer.stop()
        found.sort(key=lambda d: (d.header(dead.HEADER_FAILED_AT), d.offset), reverse=True)
        return found

    async def get(self, letter_id: str) -> Letter:
        partition, offset = parse_id(letter_id)
        consumer = AIOKafkaConsumer(**self._connection, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(DLQ.name, partition)
            if partition not in await _partitions(consumer):
                raise LetterNotFound(f"no dead letter {letter_id}")
            consumer.assign([tp])
            start = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            if not start <= offset < end:
                raise LetterNotFound(f"no dead letter {letter_id} (gone, or not yet written)")
            consumer.seek(tp, offset)
            batch = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=1)
            messages = batch.get(tp, [])
            if not messages or messages[0].offset != offset:
                raise LetterNotFound(f"no dead letter {letter_id} (compacted away)")
            m = messages[0]
            letter = Letter(m.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
        finally:
            await consumer.stop()
        if not self._ours(letter):
            raise LetterNotFound(
                f"dead letter {letter_id} is not a notification request or a CDN purge"
            )
        return letter

    async def replay(self, letter: Letter) -> str:
        """Send the record back to the topic it came from, acknowledged by Kafka; that
        topic."""
        if not letter.replayable:
            raise NotReplayable(
                f"dead letter {letter.id} kept only a prefix of the request"
                f" ({dead.HEADER_VALUE_TRUNCATED}); it cannot be replayed"
            )
        headers = [(k, v) for k, v in letter.headers if not k.startswith("dlq_")]
        headers.append(("dlq_replayed_from", letter.id.replace("-", ":").encode()))
        topic = letter.header(dead.HEADER_TOPIC)
        future = await self._producer.send_raw(
            topic,
            letter.key,
            None if letter.header(dead.HEADER_VALUE_NULL) else letter.value,
            headers,
        )
        await future
        return topic
