"""The event producer: acks=all, idempotent, CloudEvents headers, per-batch acknowledgement.

``publish_many`` queues every record first and then awaits all acknowledgements, so a
batch costs one round of broker acks, not one per record (see DESIGN §5). Each record gets
its own headers, uuid and timestamp, which on paths of tens of thousands of records a
second is most of the cost: ``publish_batched`` publishes records together, sharing the
CloudEvents time and source (each keeps its own ``ce_id``) and, per trace context, one
``traceparent``, in one record batch per partition through the client's batch API.

Trace context (``opsmesh.tracing``): a record continues ``Outgoing.trace`` (the consumed
record it answers), else the current context (an HTTP request's), else starts a trace.
With span export off that context goes on the record unchanged; with it on, each record
(each distinct context of a ``publish_batched`` call) is a ``send <topic>`` PRODUCER span,
child of that context with ``Outgoing.links`` as its links, ended on the broker's ack, and
the record carries the span's context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from opsmesh.clock import Clock, SystemClock
from opsmesh.events.base import Event
from opsmesh.kafka.clients import ProducerClient
from opsmesh.kafka.codec import encode
from opsmesh.kafka.headers import TRACEPARENT, Headers, cloudevent_headers
from opsmesh.shutdown import finish_within
from opsmesh.topics import KeyPartitions, Topic
from opsmesh.tracing.context import TraceContext, new_trace, random_hex
from opsmesh.tracing.spans import Span, SpanKind, context_of, current_trace, end_span, tracing

_PARTITION_CACHE = 65_536  # keys per topic
STOP_TIMEOUT_S = 1.0


class RecordTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: Topic
    key: str
    event: Event
    # The context this record continues (the consumed record it answers); None: the
    # current context, else a new trace.
    trace: TraceContext | None = None
    event_id: str | None = None
    partition: int | None = None  # None: Kafka's default partitioner on the key
    encoded: bytes | None = None  # the event already encoded (a caller that checked its size)
    # Other contexts that led to this record (the other alerts of a notification), as span
    # links when spans are exported.
    links: tuple[TraceContext, ...] = ()


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
        client: ProducerClient | None = None,
    ) -> None:
        """``client``: the Kafka producer to drive (default: aiokafka's, from
        ``connection``; tests pass ``opsmesh_dev.testing.kafka.InMemoryProducer``)."""
        self._source = source
        self._partitions: dict[str, KeyPartitions] = {}  # per topic
        self._partition_cache = partition_cache
        self._clock = clock or SystemClock()
        self._producer: ProducerClient = client or AIOKafkaProducer(
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
    def client(self) -> ProducerClient:
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
        """Records sharing their headers but ``ce_id`` (the item's ``event_id``, or a
        per-call id and the item's index) and ``traceparent`` (the item's ``trace``, else
        ``trace``, else the current context, else a new trace), in one record batch per
        partition; returns once the broker acknowledged all (acks=all)."""
        if not items:
            return
        now = self._clock.now()
        call_id = random_hex(64)  # unique per call, whatever context the caller passes
        traces = _BatchTraces(trace or current_trace(), self._source)
        common: dict[str, Headers] = {}  # per event type, without the traceparent
        open_batches: dict[tuple[str, int], Any] = {}  # aiokafka's BatchBuilder
        futures = []
        try:
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
                        event_type=event_type, source=self._source, time_s=now, trace=None
                    )
                event_id = item.event_id or f"{call_id}-{index}"
                headers = [(k, event_id.encode()) if k == "ce_id" else (k, v) for k, v in base]
                headers.append((TRACEPARENT, traces.traceparent(item, topic, event_type)))
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
        except BaseException as exc:
            traces.end(exc)
            raise
        traces.end()

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
        parent = item.trace or current_trace()
        tracer = tracing()
        event_type = item.event.EVENT_TYPE
        topic = item.topic.name
        span = None
        if tracer.enabled:
            span = tracer.start(
                f"send {topic}",
                kind=SpanKind.PRODUCER,
                parent=parent,
                links=item.links,
                attributes=_send_attributes(topic, event_type, self._source),
            )
            carried = context_of(span)
        else:
            carried = parent or new_trace()
        headers: Headers = cloudevent_headers(
            event_type=event_type,
            source=self._source,
            time_s=self._clock.now(),
            trace=carried,
            event_id=item.event_id,
        )
        value = item.encoded if item.encoded is not None else encode(item.event)
        try:
            future = await self.send_raw(
                topic, item.key.encode(), value, headers, self._partition(item)
            )
        except BaseException as exc:
            if span is not None:
                end_span(span, exc)
            raise
        if span is not None:
            future.add_done_callback(_ender(span))
        return future

    async def ping(self) -> None:
        """Readiness: the broker answers a metadata request."""
        await self._producer.client.fetch_all_metadata()


class _BatchTraces:
    """The ``traceparent`` per parent context of one ``publish_batched`` call, with a send
    span per context when spans are exported."""

    def __init__(self, default: TraceContext | None, source: str) -> None:
        self._default = default
        self._source = source
        self._tracer = tracing()
        self._carried: dict[TraceContext | None, bytes] = {}
        self._spans: list[Span] = []

    def traceparent(self, item: Outgoing, topic: str, event_type: str) -> bytes:
        parent = item.trace or self._default
        found = self._carried.get(parent)
        if found is not None:
            return found
        if self._tracer.enabled:
            span = self._tracer.start(
                f"send {topic}",
                kind=SpanKind.PRODUCER,
                parent=parent,
                links=item.links,
                attributes=_send_attributes(topic, event_type, self._source),
            )
            self._spans.append(span)
            carried = context_of(span)
        else:
            carried = parent or new_trace()
        found = self._carried[parent] = carried.header().encode()
        return found

    def end(self, error: BaseException | None = None) -> None:
        for span in self._spans:
            end_span(span, error)


def _send_attributes(topic: str, event_type: str, source: str) -> dict[str, str]:
    """OpenTelemetry's messaging and CloudEvents attributes of a send span."""
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": topic,
        "cloudevents.event_type": event_type,
        "cloudevents.event_source": source,
    }


def _ender(span: Span) -> Any:
    """A done-callback that ends ``span`` with the send's outcome."""

    def done(future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            end_span(span, "cancelled")
        else:
            end_span(span, future.exception())

    return done
