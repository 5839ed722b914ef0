"""An in-memory Kafka: a broker, and a consumer and a producer that satisfy the kit's
client Protocols (``opsmesh.kafka.clients``), so a pipeline stage runs the kit's real
``BatchConsumer`` and ``EventProducer`` over it in a unit test, in milliseconds::

    broker = InMemoryBroker()
    broker.create_topics(METRICS, DLQ)
    producer = EventProducer({}, source="/test", client=InMemoryProducer(broker))
    consumer = BatchConsumer(connection={}, ..., client=InMemoryConsumer(broker, group))

What it keeps of Kafka, because the kit's offset and rebalance logic depends on it:

- per partition, an append-only log with offsets that may skip (``skip``: what
  compaction or transaction markers leave), the end offset, and records as aiokafka's
  ``ConsumerRecord``;
- consumer groups: members join on ``subscribe`` and leave on ``stop``; each change is a
  rebalance that every member takes part in at its next ``getmany``, eagerly as Kafka's
  protocol does: it revokes all its partitions (the listener's
  ``on_partitions_revoked``, during which it may still commit them), then, once every
  member has rejoined, each is assigned its share (round-robin in join order;
  ``on_partitions_assigned``), resuming from the group's committed offset or the
  earliest. So no partition has two owners at once; a member that stops polling without
  ``stop`` holds the group's rebalance up (Kafka would expel it after
  ``max_poll_interval_ms``);
- commits with metadata; a commit of a partition not assigned raises
  ``IllegalStateError``, one from a member no longer in the group ``CommitFailedError``,
  as aiokafka does;
- the producer's key partitioner (aiokafka's ``DefaultPartitioner``) and its size
  limit (``MessageSizeTooLargeError``), and sends that fail on demand (``fail_next``).

Not modelled: replication, retention, transactions, fetch sizes, session timeouts, time
other than ``getmany``'s ``timeout_ms`` (woken as soon as a record arrives or the group
changes). A listener's exception propagates out of ``getmany`` (aiokafka logs it).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    MessageSizeTooLargeError,
    UnknownTopicOrPartitionError,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata, RecordMetadata

from opsmesh.kafka.aiokafka_internals import estimate_record_size
from opsmesh.kafka.clients import ConsumerClient, ProducerClient
from opsmesh.topics import Topic

__all__ = ["InMemoryBroker", "InMemoryConsumer", "InMemoryProducer"]

Header = tuple[str, bytes]


@dataclass(slots=True)
class _Log:
    offsets: list[int] = field(default_factory=list)
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    end: int = 0


@dataclass(slots=True)
class _Group:
    members: list[InMemoryConsumer] = field(default_factory=list)
    generation: int = 0
    rejoined: set[int] = field(default_factory=set)  # ids of members rejoined this generation
    committed: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)


class InMemoryBroker:
    def __init__(self) -> None:
        self._logs: dict[str, list[_Log]] = {}
        self._groups: dict[str, _Group] = {}
        self._changed = asyncio.Event()

    # --- topics and records ------------------------------------------------------------

    def create_topics(self, *topics: Topic) -> None:
        for topic in topics:
            self.create_topic(topic.name, topic.partitions)

    def create_topic(self, name: str, partitions: int) -> None:
        self._logs.setdefault(name, [_Log() for _ in range(partitions)])

    def partitions_for(self, topic: str) -> set[int] | None:
        logs = self._logs.get(topic)
        return None if logs is None else set(range(len(logs)))

    def _log(self, topic: str, partition: int) -> _Log:
        logs = self._logs.get(topic)
        if logs is None or not 0 <= partition < len(logs):
            raise UnknownTopicOrPartitionError(f"{topic}[{partition}]")
        return logs[partition]

    def append(
        self,
        topic: str,
        partition: int,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header] = (),
        timestamp_ms: int | None = None,
    ) -> int:
        """Append one record; returns its offset."""
        log = self._log(topic, partition)
        offset = log.end
        record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp=int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            timestamp_type=0,
            key=key,
            value=value,
            checksum=None,
            serialized_key_size=-1 if key is None else len(key),
            serialized_value_size=-1 if value is None else len(value),
            headers=tuple(headers),
        )
        log.offsets.append(offset)
        log.records.append(record)
        log.end = offset + 1
        self._wake()
        return offset

    def skip(self, topic: str, partition: int, count: int) -> None:
        """Advance the partition's end by ``count`` offsets that hold no record to consume
        (compacted away, or transaction markers)."""
        self._log(topic, partition).end += count
        self._wake()

    def records(
        self, topic: str, partition: int | None = None
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """What the topic holds (one partition, or all in partition order)."""
        logs = self._logs.get(topic, [])
        chosen = logs if partition is None else [self._log(topic, partition)]
        return [record for log in chosen for record in log.records]

    def end_offset(self, partition: TopicPartition) -> int:
        return self._log(partition.topic, partition.partition).end

    def committed(self, group: str, partition: TopicPartition) -> OffsetAndMetadata | None:
        found = self._groups.get(group)
        return None if found is None else found.committed.get(partition)

    def _fetch(
        self, partition: TopicPartition, position: int, limit: int
    ) -> list[ConsumerRecord[bytes, bytes]]:
        log = self._log(partition.topic, partition.partition)
        start = bisect.bisect_left(log.offsets, position)
        return log.records[start : start + limit]

    # --- groups --------------------------------------------------------------------------

    def _group(self, name: str) -> _Group:
        return self._groups.setdefault(name, _Group())

    def _join(self, name: str, member: InMemoryConsumer) -> None:
        group = self._group(name)
        group.members.append(member)
        group.generation += 1
        group.rejoined = set()
        self._wake()

    def _leave(self, name: str, member: InMemoryConsumer) -> None:
        group = self._group(name)
        if member in group.members:
            group.members.remove(member)
            group.generation += 1
            group.rejoined = set()
            self._wake()

    def _assignment(self, name: str, member: InMemoryConsumer) -> set[TopicPartition]:
        group = self._group(name)
        topics = sorted({t for m in group.members for t in m.topics})
        every = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(self.partitions_for(topic) or ())
        ]
        index = group.members.index(member)
        return {tp for i, tp in enumerate(every) if i % len(group.members) == index}

    # --- wake-ups ------------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, timeout_s: float) -> None:
        changed = self._changed
        try:
            async with asyncio.timeout(timeout_s):
                await changed.wait()
        except TimeoutError:
            return


class InMemoryConsumer:
    """A group member of an ``InMemoryBroker`` (``opsmesh.kafka.clients.ConsumerClient``)."""

    def __init__(self, broker: InMemoryBroker, group_id: str) -> None:
        self._broker = broker
        self._group_id = group_id
        self.topics: tuple[str, ...] = ()
        self._listener: ConsumerRebalanceListener | None = None
        self._revoked_in = 0  # the generation this member last revoked for
        self._assigned_in = 0  # the generation of its assignment
        self._assigned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._joined = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._joined:
            self._broker._leave(self._group_id, self)
            self._joined = False
        self._assigned = set()

    def subscribe(self, *, topics: list[str], listener: ConsumerRebalanceListener) -> None:
        self.topics = tuple(topics)
        self._listener = listener
        self._broker._join(self._group_id, self)
        self._joined = True

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        await self._rebalance()
        found = self._take(max_records)
        if not found and timeout_ms > 0:
            await self._broker._wait(timeout_ms / 1000)
            await self._rebalance()
            found = self._take(max_records)
        return found

    def _take(self, max_records: int | None) -> dict[TopicPartition, list[Any]]:
        left = max_records if max_records is not None else 1 << 30
        found: dict[TopicPartition, list[Any]] = {}
        for tp in sorted(self._assigned):
            if left <= 0:
                break
            records = self._broker._fetch(tp, self._positions[tp], left)
            if records:
                found[tp] = list(records)
                self._positions[tp] = records[-1].offset + 1
                left -= len(records)
        return found

    async def _rebalance(self) -> None:
        if not self._joined:
            return
        group = self._broker._group(self._group_id)
        if self._revoked_in != group.generation:
            if self._listener is not None:
                await self._listener.on_partitions_revoked(set(self._assigned))
            self._assigned = set()
            self._positions = {}
            self._revoked_in = group.generation
            group.rejoined.add(id(self))
            self._broker._wake()  # the members waiting for this one
        complete = all(id(m) in group.rejoined for m in group.members)
        if not complete or self._assigned_in == group.generation:
            return
        self._assigned_in = group.generation
        self._assigned = self._broker._assignment(self._group_id, self)
        for tp in self._assigned:
            committed = group.committed.get(tp)
            self._positions[tp] = committed.offset if committed is not None else 0
        if self._listener is not None:
            await self._listener.on_partitions_assigned(set(self._assigned))

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._broker.end_offset(partition) if partition in self._assigned else None

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        return self.highwater(partition)

    async def commit(self, offsets: Mapping[TopicPartition, Any]) -> None:
        group = self._broker._group(self._group_id)
        if self not in group.members:
            raise CommitFailedError("this member is not in the group")
        for tp in offsets:
            if tp not in self._assigned:
                raise IllegalStateError(f"partition {tp} is not assigned")
        for tp, value in offsets.items():
            offset, metadata = value if isinstance(value, tuple) else (value, "")
            group.committed[tp] = OffsetAndMetadata(int(offset), str(metadata))

    async def committed_metadata(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, str]:
        group = self._broker._group(self._group_id)
        return {tp: group.committed[tp].metadata for tp in partitions if tp in group.committed}


class _Batch:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._size = 0
        self.records: list[tuple[bytes | None, bytes | None, tuple[Header, ...]]] = []

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header] = (),
    ) -> Any:
        size = estimate_record_size(key, value, list(headers))
        if self.records and self._size + size > self._max_bytes:
            return None
        self._size += size
        self.records.append((key, value, tuple(headers)))
        return size

    def close(self) -> None:
        return None


class _Cluster:
    def __init__(self, broker: InMemoryBroker) -> None:
        self._broker = broker

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._broker.partitions_for(topic)


class _NetworkClient:
    def __init__(self, broker: InMemoryBroker) -> None:
        self.cluster = _Cluster(broker)

    async def fetch_all_metadata(self) -> _Cluster:
        return self.cluster


class InMemoryProducer:
    """A producer to an ``InMemoryBroker`` (``opsmesh.kafka.clients.ProducerClient``):
    a send is appended at once and its future is already acknowledged."""

    def __init__(
        self,
        broker: InMemoryBroker,
        *,
        max_request_size: int = 1_048_576,
        max_batch_size: int = 256 * 1024,
    ) -> None:
        self._broker = broker
        self._max_request_size = max_request_size
        self._max_batch_size = max_batch_size
        self._partitioner = DefaultPartitioner()
        self._client = _NetworkClient(broker)
        self._failures: list[BaseException] = []

    @property
    def client(self) -> _NetworkClient:
        return self._client

    def fail_next(self, *errors: BaseException) -> None:
        """The next sends' acknowledgements fail with ``errors``, in order."""
        self._failures.extend(errors)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def partitions_for(self, topic: str) -> set[int]:
        found = self._broker.partitions_for(topic)
        if found is None:
            raise UnknownTopicOrPartitionError(topic)
        return found

    def create_batch(self) -> _Batch:
        return _Batch(self._max_batch_size)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert isinstance(batch, _Batch)
        if self._failures:
            return _failed(self._failures.pop(0))
        last = -1
        for key, value, headers in batch.records:
            last = self._broker.append(topic, partition, key=key, value=value, headers=headers)
        return _done(
            RecordMetadata(topic, partition, TopicPartition(topic, partition), last, -1, 0, 0)
        )

    async def send(
        self,
        topic: str,
        *,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: list[Header] | None = None,
    ) -> asyncio.Future[Any]:
        size = estimate_record_size(key, value, list(headers or ()))
        if size > self._max_request_size:
            raise MessageSizeTooLargeError(
                f"a {size}-byte record is larger than max_request_size {self._max_request_size}"
            )
        if partition is None:
            every = sorted(await self.partitions_for(topic))
            partition = int(self._partitioner(key, every, every))
        if self._failures:
            return _failed(self._failures.pop(0))
        offset = self._broker.append(topic, partition, key=key, value=value, headers=headers or ())
        return _done(
            RecordMetadata(topic, partition, TopicPartition(topic, partition), offset, -1, 0, 0)
        )


def _done(result: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


def _failed(error: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future


if TYPE_CHECKING:  # the twins satisfy the kit's client Protocols

    def _clients(broker: InMemoryBroker) -> tuple[ConsumerClient, ProducerClient]:
        return InMemoryConsumer(broker, "group"), InMemoryProducer(broker)
