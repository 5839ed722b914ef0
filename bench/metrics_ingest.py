"""metrics-ingest throughput: Kafka → rollups (history + signals), and HTTP ingest.

``uv run python -m bench.metrics_ingest [events] [series]`` starts its own Kafka,
PostgreSQL and Redis (``LocalStack``), then:

1. fills a 4-partition topic with ``events`` ~210-byte ``MetricSampled`` records keyed by
   series (event time advancing 0.5 ms per record, so 10 s / 60 s windows keep closing);
2. baseline: raw aiokafka ``getmany`` + msgspec typed decode of the same records;
3. metrics-ingest: the kit's ``BatchConsumer`` + ``RollupStage`` with real history writes
   (PostgreSQL, day partitions) and signals (Kafka, acks=all), until every record is in;
4. HTTP: ``POST /api/v1/metrics`` with 1,000-sample JSON batches from 4 concurrent
   clients against the real app handler (publishing to Kafka with acks=all).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Sequence

import aiohttp
import msgspec
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from bench.kafka_kit import PARTITIONS, consume_until_done, raw_consume
from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.pipeline.http_api import HttpApi
from metrics_ingest.pipeline.publish import SpanPublisher
from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from opsmesh.clock import SystemClock
from opsmesh.db.migrations import apply_all
from opsmesh.db.pool import open_pool
from opsmesh.devinfra import LocalStack
from opsmesh.events import MetricSampled
from opsmesh.events.metrics import MetricSampledFields
from opsmesh.kafka import (
    BatchResult,
    EventProducer,
    Received,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.labels import series_id
from opsmesh.topics import ALL_TOPICS, Topic


async def fill(bootstrap: str, topic: str, events: int, series: int, start: float) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, max_batch_size=256 * 1024, linger_ms=20
    )
    await producer.start()
    encoder = msgspec.json.Encoder()
    labels = [
        {"service": f"svc-{i % 64}", "host": f"host-{i:05d}.prod.internal", "region": "eu-west-1"}
        for i in range(series)
    ]
    keys = [series_id("http_request_duration_seconds", ls).encode() for ls in labels]
    batches = [producer.create_batch() for _ in range(PARTITIONS)]
    futures = []
    try:
        for i in range(events):
            s = i % series
            partition = hash(keys[s]) % PARTITIONS
            value = encoder.encode(
                MetricSampled(
                    name="http_request_duration_seconds",
                    value=i * 0.001,
                    labels=labels[s],
                    sampled_at=start + i * 0.0005,
                )
            )
            if batches[partition].append(key=keys[s], value=value, timestamp=None) is None:
                batches[partition].close()
                futures.append(
                    await producer.send_batch(batches[partition], topic, partition=partition)
                )
                batches[partition] = producer.create_batch()
                batches[partition].append(key=keys[s], value=value, timestamp=None)
        for partition, batch in enumerate(batches):
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class Counted:
    """RollupStage plus a record count, to know when every record is in."""

    def __init__(self, stage: RollupStage, target: int) -> None:
        self.stage = stage
        self.seen = 0
        self.started = 0.0
        self.finished = 0.0
        self.done = asyncio.Event()
        self._target = target

    async def handle(self, batch: Sequence[Received[MetricSampledFields]]) -> BatchResult:
        if batch and not self.started:
            self.started = time.perf_counter()
        result = await self.stage.handle(batch)
        self.seen += len(batch)
        if self.seen >= self._target and not self.done.is_set():
            self.finished = time.perf_counter()
            self.done.set()
        return result

    async def on_committed_metadata(self, metadata: dict[tuple[str, int], str]) -> None:
        await self.stage.on_committed_metadata(metadata)

    async def on_assigned(self, partitions: set[tuple[str, int]]) -> None:
        await self.stage.on_assigned(partitions)

    async def on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        await self.stage.on_revoked(partitions)


async def rollup_consume(
    bootstrap: str, dsn: str, topic: Topic, events: int
) -> tuple[float, int, int]:
    connection = {"bootstrap_servers": bootstrap}
    producer = EventProducer(connection, source="/bench")
    await producer.start()
    pool = await open_pool(dsn, name="bench")
    registry = CollectorRegistry()
    rollups = Rollups(WindowConfig((10.0, 60.0), 5.0, 5.0, max_series_per_metric=100_000))
    stage = RollupStage(
        rollups=rollups,
        history=RollupHistory(pool),
        producer=SpanPublisher(producer.client, source="/bench", clock=SystemClock()),
        clock=SystemClock(),
        registry=registry,
        max_series_per_metric=100_000,
    )
    handler = Counted(stage, events)
    try:
        await consume_until_done(
            bootstrap, producer, topic, MetricSampledFields, handler, registry=registry
        )
    finally:
        await producer.stop()
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM metrics_ingest.rollups")
        row = await cursor.fetchone()
    await pool.close()
    closed = int(registry.get_sample_value("metrics_ingest_windows_closed_total") or 0)
    return handler.seen / (handler.finished - handler.started), closed, int(row[0] if row else 0)


async def http_ingest(bootstrap: str, requests: int, per_request: int, clients: int) -> float:
    connection = {"bootstrap_servers": bootstrap}
    producer = EventProducer(connection, source="/bench")
    await producer.start()
    token = "bench-token"
    publisher = SpanPublisher(producer.client, source="/bench", clock=SystemClock())
    api = HttpApi(
        token=token,
        limits=IngestLimits(max_samples=per_request),
        window_sizes=(10.0, 60.0),
        rollups=Rollups(WindowConfig()),
        clock=SystemClock(),
        registry=CollectorRegistry(),
        producer=lambda: publisher,
        pool=lambda: None,  # type: ignore[arg-type,return-value]
    )
    app = web.Application(client_max_size=16 * 1024 * 1024)
    api.routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    now = time.time()
    body = msgspec.json.encode(
        {
            "samples": [
                {
                    "name": "http_requests_total",
                    "kind": "counter",
                    "value": i,
                    "labels": {"service": f"svc-{i % 64}", "host": f"host-{i % 500:03d}"},
                    "sampled_at": now,
                }
                for i in range(per_request)
            ]
        }
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            queue.get_nowait()
            async with session.post(
                f"http://127.0.0.1:{port}/api/v1/metrics", data=body, headers=headers
            ) as response:
                assert response.status == 200, await response.text()

    try:
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            await asyncio.gather(*(client(session) for _ in range(clients)))
            elapsed = time.perf_counter() - started
    finally:
        await runner.cleanup()
        await producer.stop()
    return requests * per_request / elapsed


async def run(bootstrap: str, dsn: str, events: int, series: int) -> None:
    topic = Topic(f"bench.metrics.{uuid.uuid4().hex[:8]}", PARTITIONS, "series")
    await ensure_topics({"bootstrap_servers": bootstrap}, [topic, *ALL_TOPICS])
    await apply_all(dsn)
    start = time.time() - events * 0.0005 - 120  # event time ends two minutes ago
    await fill(bootstrap, topic.name, events, series, start)
    raw, _ = await raw_consume(bootstrap, topic.name, events)
    ingest, closed, rows = await rollup_consume(bootstrap, dsn, topic, events)
    http = await http_ingest(bootstrap, requests=200, per_request=1_000, clients=4)
    print(f"metrics-ingest: {events:,} samples over {series:,} series, {PARTITIONS} partitions")
    print(f"  baseline raw aiokafka getmany + msgspec typed decode: {raw:,.0f} samples/s")
    print(f"  Kafka -> rollups (kit + RollupStage + PostgreSQL + signals): {ingest:,.0f} samples/s")
    print(f"  ratio rollups / baseline: {ingest / raw:.2f}")
    print(f"  windows closed: {closed:,} (history rows: {rows:,})")
    print(f"  HTTP ingest (1,000-sample batches, 4 clients, acks=all): {http:,.0f} samples/s")


def main() -> int:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 600_000
    series = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    with LocalStack() as endpoints:
        asyncio.run(run(endpoints.kafka_bootstrap, endpoints.pg_dsn, events, series))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
