"""Publishing many records of one span at once (an HTTP request, a batch of windows).

``EventProducer.publish_many`` builds a fresh trace, a uuid and a timestamp string per
record; on these paths (tens of thousands of records per second) that is most of the
cost. Records published together share one span, so they share the CloudEvents time,
source and ``traceparent``; each keeps its own ``ce_id`` (the caller's stable id, or the
span id plus its index). Every record is still acknowledged by the broker (acks=all)
before this returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka.partitioner import DefaultPartitioner

from opsmesh.clock import Clock
from opsmesh.kafka.codec import encode
from opsmesh.kafka.headers import TraceContext, cloudevent_headers, new_trace
from opsmesh.kafka.producer import Outgoing


class RecordBatch(Protocol):
    """The part of aiokafka's ``BatchBuilder`` used here."""

    def append(
        self,
        *,
        key: bytes | None,
        value: bytes | None,
        timestamp: int | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> object | None: ...

    def close(self) -> None: ...


class KafkaSender(Protocol):
    """The part of ``AIOKafkaProducer`` used here."""

    def create_batch(self) -> RecordBatch: ...

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]: ...

    async def partitions_for(self, topic: str) -> set[int]: ...


class RecordTooLarge(ValueError):
    pass


class SpanPublisher:
    def __init__(self, producer: KafkaSender, *, source: str, clock: Clock) -> None:
        self._producer = producer
        self._source = source
        self._clock = clock
        # Keys repeat (a series closes a window every few seconds): the partition of a
        # key is computed once, with the client's own partitioner (murmur2, as Java's),
        # instead of per record in pure Python.
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self._by_key: dict[tuple[str, bytes], int] = {}

    async def publish_many(
        self, items: Sequence[Outgoing], trace: TraceContext | None = None
    ) -> None:
        """Records go into one record batch per partition (the client's batch API: a
        fraction of the cost of ``send`` per record); returns once all are acknowledged."""
        if not items:
            return
        span = trace.child() if trace else new_trace()
        now = self._clock.now()
        common: dict[str, list[tuple[str, bytes]]] = {}
        open_batches: dict[tuple[str, int], RecordBatch] = {}
        futures = []
        by_key = self._by_key
        for index, item in enumerate(items):
            topic = item.topic.name
            key = item.key.encode()
            partition = by_key.get((topic, key))
            if partition is None:
                partition = await self._partition(topic, key)
            event_type = item.event.EVENT_TYPE
            base = common.get(event_type)
            if base is None:
                base = cloudevent_headers(
                    event_type=event_type,
                    source=self._source,
                    time_s=now,
                    trace=span,
                    event_id="-",
                )
                common[event_type] = base
            event_id = item.event_id or f"{span.trace_id}-{span.span_id}-{index}"
            headers = [(k, event_id.encode()) if k == "ce_id" else (k, v) for k, v in base]
            value = encode(item.event)
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[(topic, partition)] = self._producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                futures.append(await self._send(batch, topic, partition))
                batch = open_batches[(topic, partition)] = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise RecordTooLarge(f"{len(value)}-byte record does not fit a batch")
        for (topic, partition), batch in open_batches.items():
            futures.append(await self._send(batch, topic, partition))
        await asyncio.gather(*futures)

    async def _send(self, batch: RecordBatch, topic: str, partition: int) -> asyncio.Future[Any]:
        batch.close()
        return await self._producer.send_batch(batch, topic, partition=partition)

    async def _partition(self, topic: str, key: bytes) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(
                await self._producer.partitions_for(topic)
            )
        if len(self._by_key) >= 1_000_000:
            self._by_key.clear()
        partition: int = self._partitioner(key, partitions, partitions)
        self._by_key[(topic, key)] = partition
        return partition


class MemoryPublisher:
    """The in-repo fake of the publisher port: keeps every record it is given."""

    def __init__(self) -> None:
        self.items: list[Outgoing] = []

    async def publish_many(
        self, items: Sequence[Outgoing], trace: TraceContext | None = None
    ) -> None:
        self.items.extend(items)
