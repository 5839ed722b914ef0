"""The event producer: acks=all, idempotent, CloudEvents headers, per-batch acknowledgement.

``publish_many`` queues every record first and then awaits all acknowledgements, so a
batch costs one round of broker acks, not one per record (see DESIGN §5). Each record gets
its own trace span, uuid and timestamp, which on paths of tens of thousands of records a
second is most of the cost: ``publish_batched`` publishes the records of one span (an HTTP
request, a batch of closed windows) together, sharing the CloudEvents time, source and
``traceparent`` (each keeps its own ``ce_id``), in one record batch per partition through
the client's batch API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from opsmesh.clock import Clock, SystemClock
from opsmesh.events.base import Event
from opsmesh.kafka.codec import encode
from opsmesh.kafka.headers import Headers, TraceContext, cloudevent_headers, new_trace
from opsmesh.shutdown import finish_within
from opsmesh.topics import KeyPartitions, Topic

_PARTITION_CACHE = 65_536  # keys per topic
STOP_TIMEOUT_S = 1.0


class RecordTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: Topic
    key: str
    event: Event
    trace: TraceContext | None = None
    event_id: str | None = None
    partition: int | None = None  # None: Kafka's default partitioner on the key
    encoded: bytes | None = None  # the event already encoded (a caller that checked its size)


async def acknowledged(futures: Sequence[asyncio.Future[Any]]) -> None:
    """Wait for every queued record's acknowledgement; raises the first failure."""
    if futures:
        await asyncio.gather(*futures)


class EventProducer:
    def __init__(
        self,
        connection: dict[str, Any],
        *,
        source: str,
        clock: Clock | None = None,
        linger_ms: int = 5,
        partition_cache: int = _PARTITION_CACHE,
    ) -> None:
        self._source = source
        self._partitions: dict[str, KeyPartitions] = {}  # per topic
        self._partition_cache = partition_cache
        self._clock = clock or SystemClock()
        self._producer = AIOKafkaProducer(
            **connection,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=256 * 1024,
            client_id=source,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Flush and close within ``timeout_s``: with the broker gone, the flush of pending
        records would otherwise wait out the request timeout (40 s), and a SIGTERM with it."""
        await finish_within(self._producer.stop(), timeout_s, "producer stop")

    @property
    def client(self) -> AIOKafkaProducer:
        return self._producer

    async def publish(self, item: Outgoing) -> None:
        await self.publish_many((item,))

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        """Send all, then wait until the broker has acknowledged every one (acks=all)."""
        await acknowledged(await self.enqueue(items))

    async def enqueue(self, items: Iterable[Outgoing]) -> list[asyncio.Future[Any]]:
        """Queue every record, in order, without waiting for the broker; await the returned
        futures (``acknowledged``) for acks=all. A caller that must order records across
        concurrent tasks queues them under its own lock and awaits outside it."""
        return [await self._send(item) for item in items]

    async def publish_batched(
        self, items: Sequence[Outgoing], trace: TraceContext | None = None
    ) -> None:
        """The records of one span, sharing its headers but their ``ce_id`` (the item's
        ``event_id``, or the span id and the item's index), in one record batch per
        partition; returns once the broker acknowledged all (acks=all)."""
        if not items:
            return
        span = trace.child() if trace else new_trace()
        now = self._clock.now()
        common: dict[str, Headers] = {}
        open_batches: dict[tuple[str, int], Any] = {}  # aiokafka's BatchBuilder
        futures = []
        for index, item in enumerate(items):
            topic = item.topic.name
            key = item.key.encode()
            partition = self._partition(item)
            if partition is None:  # metadata not loaded yet
                await self._producer.partitions_for(topic)
                partition = self._partition(item)
                if partition is None:
                    raise KeyError(f"no partitions known for {topic}")
            event_type = item.event.EVENT_TYPE
            base = common.get(event_type)
            if base is None:
                base = common[event_type] = cloudevent_headers(
                    event_type=event_type,
                    source=self._source,
                    time_s=now,
                    trace=span,
                    event_id="-",
                )
            event_id = item.event_id or f"{span.trace_id}-{span.span_id}-{index}"
            headers = [(k, event_id.encode()) if k == "ce_id" else (k, v) for k, v in base]
            value = item.encoded if item.encoded is not None else encode(item.event)
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[(topic, partition)] = self._producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                futures.append(await self._send_batch(batch, topic, partition))
                batch = open_batches[(topic, partition)] = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise RecordTooLarge(f"{len(value)}-byte record does not fit a batch")
        for (topic, partition), batch in open_batches.items():
            futures.append(await self._send_batch(batch, topic, partition))
        await acknowledged(futures)

    async def _send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        batch.close()
        future: asyncio.Future[Any] = await self._producer.send_batch(
            batch, topic, partition=partition
        )
        return future

    async def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self._producer.send(
            topic, value=value, key=key, headers=list(headers), partition=partition
        )
        return future

    def _partition(self, item: Outgoing) -> int | None:
        """Kafka's default partition for the key, remembered per key (``KeyPartitions``)."""
        if item.partition is not None:
            return item.partition
        partitions = self._partitions.get(item.topic.name)
        if partitions is None:
            known = self._producer.client.cluster.partitions_for_topic(item.topic.name)
            if not known:
                return None  # metadata not loaded yet: let the client partition this one
            partitions = self._partitions[item.topic.name] = KeyPartitions(
                len(known), self._partition_cache
            )
        return partitions(item.key)

    async def _send(self, item: Outgoing) -> asyncio.Future[Any]:
        trace = item.trace.child() if item.trace else new_trace()
        headers: Headers = cloudevent_headers(
            event_type=item.event.EVENT_TYPE,
            source=self._source,
            time_s=self._clock.now(),
            trace=trace,
            event_id=item.event_id,
        )
        value = item.encoded if item.encoded is not None else encode(item.event)
        return await self.send_raw(
            item.topic.name, item.key.encode(), value, headers, self._partition(item)
        )

    async def ping(self) -> None:
        """Readiness: the broker answers a metadata request."""
        await self._producer.client.fetch_all_metadata()
