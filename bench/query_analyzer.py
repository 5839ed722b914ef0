"""query-analyzer's consume path against raw aiokafka + msgspec, in one run.

Fills a 4-partition topic with slow-query events (40 templates with varied literals,
IN-lists and comments, a third carrying trace/span ids), then reads it back twice:
- baseline: raw ``getmany`` + typed msgspec decode, no group, no work;
- query-analyzer: ``BatchConsumer`` + the real ``StatsStage`` (fingerprint via the cache,
  per-window aggregation with sketches, N+1 detection, one PostgreSQL transaction per
  batch with the offsets).
Prints events/s for both and the fingerprint cache's hit rate.

    uv run python -m bench.query_analyzer [events] [bind-parameter share]

Without a share it runs twice: all literals (the cache's worst case) and half bind
parameters.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import Sequence

import msgspec
from prometheus_client import CollectorRegistry

from bench.kafka_kit import PARTITIONS, consume_until_done, fill_values, raw_consume
from opsmesh.clock import SystemClock
from opsmesh.db.migrations import apply_all
from opsmesh.db.pool import open_pool
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka import (
    BatchResult,
    EventProducer,
    Received,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.infra import LocalStack
from query_analyzer.core.traces import TraceBuffer
from query_analyzer.pipeline.signals import MemorySignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.stats import QueryStats

TABLES = ["orders", "users", "line_items", "invoices", "carts", "products", "sessions", "events"]
COLUMNS = ["id", "customer_id", "status", "created_at"]


def templates(rng: random.Random) -> list[str]:
    shapes = [
        "SELECT * FROM {t} WHERE {c} = {n}",
        "SELECT id, {c} FROM {t} WHERE {c} IN ({ns}) ORDER BY id LIMIT {n}",
        "/* app=web,route=/{t} */ SELECT count(*) FROM {t} WHERE {c} > {n} AND status = '{s}'",
        "UPDATE {t} SET status = '{s}' WHERE id = {n}",
        "SELECT t.* FROM {t} t JOIN users u ON u.id = t.customer_id WHERE u.email = '{s}'",
    ]
    return [
        s.replace("{t}", t).replace("{c}", c) for s in shapes for t in TABLES for c in COLUMNS[:1]
    ]


def make_events(count: int, bind_share: float = 0.0) -> list[bytes]:
    """``bind_share``: the fraction of events whose SQL carries bind parameters ($1) rather
    than literals, as drivers with server-side binding (psycopg 3, asyncpg, JDBC) log it."""
    rng = random.Random(42)
    shapes = templates(rng)
    encoder = msgspec.json.Encoder()
    out = []
    start = time.time() - 300
    for i in range(count):
        shape = shapes[rng.randrange(len(shapes))]
        if rng.random() < bind_share:
            sql = shape.replace("{ns}", "$2, $3").replace("{n}", "$1").replace("'{s}'", "$4")
        else:
            sql = (
                shape.replace(
                    "{ns}", ", ".join(str(rng.randint(1, 10**6)) for _ in range(rng.randint(1, 6)))
                )
                .replace("{n}", str(rng.randint(1, 10**6)))
                .replace("{s}", rng.choice(["paid", "open", "alice@example.com", "x"]))
            )
        traced = i % 3 == 0
        event = SlowQueryObserved(
            sql=sql,
            duration_ms=rng.lognormvariate(4, 0.8),
            rows=rng.randint(0, 100),
            database="shop",
            application="web",
            trace_id=f"trace-{i // 12}" if traced else None,
            span_id=f"span-{i}" if traced else None,
            parent_span_id=f"parent-{i // 12}" if traced else None,
            started_at=start + i * 300 / count,
        )
        out.append(encoder.encode(event))
    return out


class Timed:
    """Wraps the stage to time it from its first record to the last one."""

    def __init__(self, stage: StatsStage, target: int) -> None:
        self.stage = stage
        self.seen = 0
        self.started = 0.0
        self.finished = 0.0
        self.cpu_started = 0.0
        self.cpu_finished = 0.0
        self.done = asyncio.Event()
        self._target = target
        # Where the wall time goes: inside the stage (its CPU, and its waits on PostgreSQL)
        # or in the kit (fetching, decoding, committing).
        self.batches = 0
        self.stage_wall = 0.0
        self.stage_cpu = 0.0

    async def handle(self, batch: Sequence[Received[SlowQueryObserved]]) -> BatchResult:
        if batch and not self.started:
            self.started, self.cpu_started = time.perf_counter(), time.process_time()
        wall, cpu = time.perf_counter(), time.process_time()
        result = await self.stage.handle(batch)
        if self.started and not self.finished:
            self.stage_wall += time.perf_counter() - wall
            self.stage_cpu += time.process_time() - cpu
            self.batches += bool(batch)
        self.seen += len(batch)
        if self.seen >= self._target and not self.done.is_set():
            self.finished, self.cpu_finished = time.perf_counter(), time.process_time()
            self.done.set()
        return result

    async def on_assigned(self, partitions: set[tuple[str, int]]) -> None:
        return None

    async def on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        return None


async def analyzer_consume(bootstrap: str, pg_dsn: str, topic: Topic, events: int) -> Timed:
    connection = {"bootstrap_servers": bootstrap}
    producer = EventProducer(connection, source="/bench")
    await producer.start()
    pool = await open_pool(pg_dsn, name="bench", max_size=2)
    registry = CollectorRegistry()
    group = f"bench.qa.{uuid.uuid4().hex[:8]}"
    stage = StatsStage(
        pool=pool,
        stats=QueryStats(pool),
        findings=FindingStore(pool),
        signals=MemorySignalSink(),
        consumer=group,
        registry=registry,
        clock=SystemClock(),
        # Traces are read at the end of every batch, so N+1 detection is inside the
        # measured time (the service waits for a quiet trace; the work is the same).
        traces=TraceBuffer(settle_s=0.0),
    )
    timed = Timed(stage, events)
    try:
        await consume_until_done(
            bootstrap, producer, topic, SlowQueryObserved, timed, registry=registry, group=group
        )
    finally:
        await producer.stop()
        await pool.close()
    return timed


async def run(bootstrap: str, pg_dsn: str, events: int, bind_share: float = 0.0) -> None:
    await apply_all(pg_dsn)
    topic = Topic(f"bench.qa.{uuid.uuid4().hex[:8]}", PARTITIONS, "none")
    await ensure_topics({"bootstrap_servers": bootstrap}, [topic, DLQ])
    values = make_events(events, bind_share)
    size = sum(map(len, values)) / len(values)
    await fill_values(bootstrap, topic.name, values)
    raw, raw_cpu = await raw_consume(bootstrap, topic.name, events, SlowQueryObserved)
    timed = await analyzer_consume(bootstrap, pg_dsn, topic, events)
    wall, cpu = timed.finished - timed.started, timed.cpu_finished - timed.cpu_started
    rate, rate_cpu = timed.seen / wall, timed.seen / cpu
    cache = timed.stage._cache
    print(f"query-analyzer: {events:,} SlowQueryObserved events (~{size:.0f} B),", end=" ")
    print(f"{PARTITIONS} partitions, {bind_share:.0%} with bind parameters")
    print(f"  baseline raw aiokafka getmany + msgspec typed decode: {raw:,.0f} events/s")
    print("  BatchConsumer + StatsStage (fingerprint, windows + sketches, N+1, one PG")
    print(f"    transaction per batch): {rate:,.0f} events/s")
    print(f"  ratio / baseline: {rate / raw:.2f}")
    # Per CPU-second of this process: less sensitive to other tenants of a shared host
    # (the broker and PostgreSQL run in their own processes and are not counted).
    print(f"  per CPU-second of the consumer process: baseline {raw_cpu:,.0f},", end=" ")
    print(f"query-analyzer {rate_cpu:,.0f} events/s")
    print(
        f"  per event: {wall / timed.seen * 1e6:.1f} us wall, {cpu / timed.seen * 1e6:.1f} us"
        f" CPU; in the stage {timed.stage_wall / timed.seen * 1e6:.1f} us wall,"
        f" {timed.stage_cpu / timed.seen * 1e6:.1f} us CPU ({timed.batches} batches)"
    )
    print(f"  fingerprint cache: {cache.hits:,} hits, {cache.misses:,} misses")


def main() -> int:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    shares = [float(sys.argv[2])] if len(sys.argv) > 2 else [0.0, 0.5]
    with LocalStack() as endpoints:
        for share in shares:
            asyncio.run(run(endpoints.kafka_bootstrap, endpoints.pg_dsn, events, share))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
