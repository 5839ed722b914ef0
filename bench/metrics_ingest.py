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
import json
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import aiohttp
import msgspec
import psycopg
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from bench.kafka_kit import PARTITIONS, consume_until_done, raw_consume
from metrics_ingest.api.gate import HttpIngest
from metrics_ingest.pipeline.admission import PgSeriesAdmission
from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.cardinality import SeriesLimits
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import http_app
from opsmesh.clock import SystemClock
from opsmesh.db.migrations import apply_all
from opsmesh.db.pool import open_pool
from opsmesh.events import MetricSampled
from opsmesh.events.metrics import MetricSampledFields
from opsmesh.kafka import (
    BatchResult,
    EventProducer,
    Received,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.labels import series_id
from opsmesh.runtime import tune_gc
from opsmesh.topics import ALL_TOPICS, Topic
from opsmesh_dev.infra import LocalStack


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


class Gated:
    """A replica's ``RollupStage``, held at its first records until the parent says go
    (so every replica starts together, after the group settled), and done once it has
    seen the last offset of each partition it owns."""

    def __init__(self, stage: RollupStage) -> None:
        self.stage = stage
        self.go = asyncio.Event()
        self.done = asyncio.Event()
        self.started = 0.0
        self.finished = 0.0
        self.seen = 0
        self.ends: dict[int, int] = {}  # partition -> offset of its last record
        self._reached: dict[int, int] = {}
        self._owned: set[int] = set()

    async def handle(self, batch: Sequence[Received[MetricSampledFields]]) -> BatchResult:
        if batch and not self.go.is_set():
            await self.go.wait()
        result = await self.stage.handle(batch)
        self.seen += len(batch)
        reached = self._reached
        for record in batch:  # offsets only grow within a partition: the last one is the max
            message = record.message
            reached[message.partition] = message.offset
        if self.ends and not self.done.is_set() and self._all_reached():
            self.finished = time.monotonic()
            self.done.set()
        return result

    def _all_reached(self) -> bool:
        return all(self._reached.get(p, -1) >= self.ends.get(p, -1) for p in self._owned)

    async def on_committed_metadata(self, metadata: dict[tuple[str, int], str]) -> None:
        await self.stage.on_committed_metadata(metadata)

    async def on_assigned(self, partitions: set[tuple[str, int]]) -> None:
        self._owned |= {p for _, p in partitions}
        _tell({"owned": sorted(self._owned)})
        await self.stage.on_assigned(partitions)

    async def on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        self._owned -= {p for _, p in partitions}
        _tell({"owned": sorted(self._owned)})
        await self.stage.on_revoked(partitions)


def _tell(message: dict[str, Any]) -> None:
    print(json.dumps({"bench": message}), flush=True)


async def replica(bootstrap: str, dsn: str, topic: Topic, group: str) -> None:
    """One metrics-ingest replica (the kit's consumer + RollupStage + PostgreSQL +
    signals), driven by its parent over stdin/stdout."""
    connection = {"bootstrap_servers": bootstrap}
    producer = EventProducer(connection, source="/bench", partition_cache=1_000_000)
    await producer.start()
    pool = await open_pool(dsn, name="bench")
    registry = CollectorRegistry()
    # As the service wires them: the per-metric limit raised for the benchmark's series,
    # the global limits at their defaults.
    limits = SeriesLimits(per_metric=100_000, series=1_000_000, metric_names=10_000)
    stage = RollupStage(
        rollups=Rollups(
            WindowConfig(
                (10.0, 60.0),
                5.0,
                5.0,
                max_series_per_metric=limits.per_metric,
                max_series=limits.series,
                max_metric_names=limits.metric_names,
            )
        ),
        history=RollupHistory(pool),
        producer=producer,
        clock=SystemClock(),
        registry=registry,
        limits=limits,
        admission=PgSeriesAdmission(pool, limits),
    )
    handler = Gated(stage)

    async def parent() -> None:
        line = await asyncio.to_thread(sys.stdin.readline)
        handler.ends = {int(p): end for p, end in json.loads(line)["ends"].items()}
        handler.started = time.monotonic()
        handler.go.set()

    listening = asyncio.create_task(parent())
    try:
        await consume_until_done(
            bootstrap, producer, topic, MetricSampledFields, handler, registry=registry, group=group
        )
    finally:
        listening.cancel()
        await producer.stop()
        await pool.close()
    closed = int(registry.get_sample_value("metrics_ingest_windows_closed_total") or 0)
    _tell(
        {
            "started": handler.started,
            "finished": handler.finished,
            "seen": handler.seen,
            "closed": closed,
            "cpu_s": time.process_time(),
        }
    )


class Replicas:
    """``count`` replica processes in one consumer group on ``topic``."""

    def __init__(self, count: int, bootstrap: str, dsn: str, topic: Topic) -> None:
        self.count = count
        self._args = [bootstrap, dsn, topic.name, str(topic.partitions)]
        self._group = f"bench.rollups.{uuid.uuid4().hex[:8]}"
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        """Start the replicas and wait until the group's assignment has settled: every
        partition owned, by exactly one replica, each replica owning some."""
        self._processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.metrics_ingest",
                "--replica",
                *self._args,
                self._group,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(self.count)
        ]
        owned: list[set[int]] = [set() for _ in self._processes]
        partitions = int(self._args[3])
        readers = {asyncio.create_task(self._next(i)): i for i in range(len(self._processes))}
        while not _settled(owned, partitions):
            finished, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                i = readers.pop(task)
                owned[i] = set(task.result()["owned"])
                readers[asyncio.create_task(self._next(i))] = i
        for task in readers:
            task.cancel()

    async def _next(self, index: int) -> dict[str, Any]:
        stdout = self._processes[index].stdout
        assert stdout is not None
        while True:  # lines that are not the replica's messages are its logs
            line = await stdout.readline()
            if not line:
                raise RuntimeError(f"replica {index} exited")
            if line.startswith(b'{"bench": '):
                message: dict[str, Any] = json.loads(line)["bench"]
                return message

    async def run(self, ends: dict[int, int]) -> list[dict[str, Any]]:
        """Say go (with each partition's last offset); the replicas' reports when done."""
        body = (json.dumps({"ends": ends}) + "\n").encode()
        for process in self._processes:
            assert process.stdin is not None
            process.stdin.write(body)
            await process.stdin.drain()
        reports = []
        for i, process in enumerate(self._processes):
            message = await self._next(i)
            while "finished" not in message:
                message = await self._next(i)
            reports.append(message)
            await process.wait()
        return reports


def _settled(owned: list[set[int]], partitions: int) -> bool:
    union = set().union(*owned)
    disjoint = sum(len(o) for o in owned) == len(union)
    return all(owned) and disjoint and len(union) == partitions


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Per partition, the offset of its last record."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset - 1 for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def rollups_with_replicas(
    count: int, *, bootstrap: str, dsn: str, events: int, series: int, start: float
) -> tuple[float, int, int, float]:
    """Samples/s into rollups with ``count`` replicas; also windows closed, history rows
    and the replicas' CPU seconds."""
    topic = Topic(f"bench.metrics.{uuid.uuid4().hex[:8]}", PARTITIONS, "series")
    await ensure_topics({"bootstrap_servers": bootstrap}, [topic])
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("TRUNCATE metrics_ingest.rollups, metrics_ingest.series_admitted")
    replicas = Replicas(count, bootstrap, dsn, topic)
    await replicas.start()
    await fill(bootstrap, topic.name, events, series, start)
    reports = await replicas.run(await end_offsets(bootstrap, topic.name, PARTITIONS))
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute("SELECT count(*) FROM metrics_ingest.rollups")
        row = await cursor.fetchone()
    seen = sum(r["seen"] for r in reports)
    elapsed = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    closed = sum(r["closed"] for r in reports)
    return seen / elapsed, closed, int(row[0] if row else 0), sum(r["cpu_s"] for r in reports)


async def http_ingest(bootstrap: str, requests: int, per_request: int, clients: int) -> float:
    connection = {"bootstrap_servers": bootstrap}
    producer = EventProducer(connection, source="/bench", partition_cache=1_000_000)
    await producer.start()
    token = "bench-token"
    api = HttpIngest(
        token=token,
        limits=IngestLimits(max_samples=per_request),
        window_sizes=(10.0, 60.0),
        rollups=Rollups(WindowConfig()),
        clock=SystemClock(),
        registry=CollectorRegistry(),
        producer=producer,
        pool=None,
    )
    app = http_app(api)
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

    refused: list[int] = []  # 503s (the broker did not take a request): sent again

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            queue.get_nowait()
            for _ in range(5):  # as a client should: again after Retry-After, bounded
                async with session.post(
                    f"http://127.0.0.1:{port}/api/v1/metrics", data=body, headers=headers
                ) as response:
                    if response.status != 503:
                        assert response.status == 200, await response.text()
                        break
                    refused.append(1)
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            else:
                raise AssertionError("five 503s in a row: the broker is not taking samples")

    try:
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            await asyncio.gather(*(client(session) for _ in range(clients)))
            elapsed = time.perf_counter() - started
    finally:
        await runner.cleanup()
        await producer.stop()
    if refused:
        print(f"  HTTP ingest: {len(refused)} request(s) answered 503 and sent again")
    return requests * per_request / elapsed


async def run(bootstrap: str, dsn: str, events: int, series: int) -> None:
    topic = Topic(f"bench.metrics.{uuid.uuid4().hex[:8]}", PARTITIONS, "series")
    await ensure_topics({"bootstrap_servers": bootstrap}, [topic, *ALL_TOPICS])
    await apply_all(dsn)
    start = time.time() - events * 0.0005 - 120  # event time ends two minutes ago
    await fill(bootstrap, topic.name, events, series, start)
    raw, _ = await raw_consume(bootstrap, topic.name, events)
    one, two = [
        await rollups_with_replicas(
            count, bootstrap=bootstrap, dsn=dsn, events=events, series=series, start=start
        )
        for count in (1, 2)
    ]
    http = await http_ingest(bootstrap, requests=200, per_request=1_000, clients=4)
    print(f"metrics-ingest: {events:,} samples over {series:,} series, {PARTITIONS} partitions")
    print(f"  baseline raw aiokafka getmany + msgspec typed decode: {raw:,.0f} samples/s")
    for count, (rate, closed, rows, cpu) in ((1, one), (2, two)):
        print(
            f"  Kafka -> rollups, {count} replica{'s' if count > 1 else ''} (kit + RollupStage"
            f" + PostgreSQL + signals): {rate:,.0f} samples/s"
            f" (ratio to baseline {rate / raw:.2f}; windows closed {closed:,},"
            f" history rows {rows:,}; replica CPU {cpu:.1f} s)"
        )
    print(f"  HTTP ingest (1,000-sample batches, 4 clients, acks=all): {http:,.0f} samples/s")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--replica":
        bootstrap, dsn, name, partitions, group = sys.argv[2:7]
        topic = Topic(name, int(partitions), "series")
        tune_gc()
        asyncio.run(replica(bootstrap, dsn, topic, group))
        return 0
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 600_000
    series = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    with LocalStack() as endpoints:
        asyncio.run(run(endpoints.kafka_bootstrap, endpoints.pg_dsn, events, series))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
