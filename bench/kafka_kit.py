"""The Kafka kit's consume path against raw aiokafka + msgspec, in one run.

Fills a 4-partition topic with ~210-byte ``MetricSampled`` events (aiokafka batch API),
then reads it back twice from the beginning:
- baseline: raw ``getmany`` + typed msgspec decode, no group;
- kit: ``BatchConsumer`` (group, decode, DLQ check, batched commits) with a no-op handler.
Prints events/s for both and the ratio.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from opsmesh.clock import SystemClock
from opsmesh.events import MetricSampled
from opsmesh.kafka import (
    BatchConsumer,
    BatchResult,
    ConsumerConfig,
    DeadLetterPublisher,
    EventProducer,
    Received,
    StatelessHandler,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.runtime import tune_gc
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.infra import LocalStack

PARTITIONS = 4


def metric_samples(events: int) -> list[bytes]:
    encoder = msgspec.json.Encoder()
    return [
        encoder.encode(
            MetricSampled(
                name="http_request_duration_seconds",
                value=i * 0.001,
                labels={
                    "service": f"svc-{i % 64}",
                    "host": f"host-{i % 16:03d}.prod.internal",
                    "region": "eu-west-1",
                },
                sampled_at=1_760_000_000.0 + i / 1000,
            )
        )
        for i in range(events)
    ]


async def fill_values(
    bootstrap: str, topic: str, values: Sequence[bytes], partitions: int = PARTITIONS
) -> float:
    """Produce ``values`` with the batch API, round-robin over partitions; returns records/s."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        max_batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    futures = []
    try:
        batch = producer.create_batch()
        partition = 0
        for value in values:
            if batch.append(key=None, value=value, timestamp=None) is None:
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                partition = (partition + 1) % partitions
                batch = producer.create_batch()
                batch.append(key=None, value=value, timestamp=None)
        batch.close()
        futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(values) / (time.perf_counter() - started)


async def fill(bootstrap: str, topic: str, events: int) -> float:
    return await fill_values(bootstrap, topic, metric_samples(events))


async def raw_consume(
    bootstrap: str,
    topic: str,
    events: int,
    event_type: type[Any] = MetricSampled,
    partitions: int = PARTITIONS,
) -> tuple[float, float]:
    """The baseline: raw ``getmany`` + typed msgspec decode, no group. Returns records per
    second of wall time and per CPU-second of this process."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=1_048_576,
        fetch_max_bytes=16 * 1_048_576,
    )
    await consumer.start()
    decoder = msgspec.json.Decoder(event_type)
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        seen, started, cpu = 0, 0.0, 0.0
        while seen < events:
            batch = await consumer.getmany(timeout_ms=1000)
            if batch and not started:
                started, cpu = time.perf_counter(), time.process_time()
            for messages in batch.values():
                for message in messages:
                    decoder.decode(message.value)
                seen += len(messages)
        return seen / (time.perf_counter() - started), seen / (time.process_time() - cpu)
    finally:
        await consumer.stop()


class Counting(StatelessHandler):
    def __init__(self, target: int) -> None:
        self.seen = 0
        self.started = 0.0
        self.finished = 0.0
        self.done = asyncio.Event()
        self._target = target

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        if batch and not self.started:
            self.started = time.perf_counter()
        self.seen += len(batch)
        if self.seen >= self._target and not self.done.is_set():
            self.finished = time.perf_counter()
            self.done.set()
        return BatchResult()


async def consume_until_done(
    bootstrap: str,
    producer: EventProducer,
    topic: Topic,
    event_type: type[Any],
    handler: Any,
    *,
    registry: CollectorRegistry,
    group: str | None = None,
) -> None:
    """Run the kit's ``BatchConsumer`` into ``handler`` until ``handler.done`` is set, with
    the GC settings every service runs with."""
    tune_gc()  # as opsmesh.service_main does for every service
    consumer = BatchConsumer(
        connection={"bootstrap_servers": bootstrap},
        config=ConsumerConfig(group_id=group or f"bench.{uuid.uuid4().hex[:8]}", topics=(topic,)),
        event_type=event_type,
        handler=handler,
        dead_letters=DeadLetterPublisher(
            producer, service="bench", clock=SystemClock(), registry=registry
        ),
        registry=registry,
        client_id="bench",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await handler.done.wait()
    finally:
        stop.set()
        await task


async def kit_consume(bootstrap: str, topic: Topic, events: int) -> float:
    producer = EventProducer({"bootstrap_servers": bootstrap}, source="/bench")
    await producer.start()
    handler = Counting(events)
    try:
        await consume_until_done(
            bootstrap, producer, topic, MetricSampled, handler, registry=CollectorRegistry()
        )
    finally:
        await producer.stop()
    return handler.seen / (handler.finished - handler.started)


async def run(bootstrap: str, events: int) -> None:
    topic = Topic(f"bench.kit.{uuid.uuid4().hex[:8]}", PARTITIONS, "none")
    await ensure_topics({"bootstrap_servers": bootstrap}, [topic, DLQ])
    produced = await fill(bootstrap, topic.name, events)
    raw, _ = await raw_consume(bootstrap, topic.name, events)
    kit = await kit_consume(bootstrap, topic, events)
    print(f"kafka-kit: {events:,} MetricSampled events (~210 B), {PARTITIONS} partitions")
    print(f"  produce (aiokafka batch API, acks=1): {produced:,.0f} events/s")
    print(f"  baseline raw aiokafka getmany + msgspec typed decode: {raw:,.0f} events/s")
    print(f"  opsmesh BatchConsumer, no-op handler: {kit:,.0f} events/s")
    print(f"  ratio kit / baseline: {kit / raw:.2f}")


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    with LocalStack() as endpoints:
        asyncio.run(run(endpoints.kafka_bootstrap, events))


if __name__ == "__main__":
    main()
