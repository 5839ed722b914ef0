"""Over real Kafka and PostgreSQL: slow-query events in; statistics, findings and signals out.

The stage runs in a ``BatchConsumer`` on a topic and group of the test's own, so nothing
else in the session interferes; signals go to the real signals topic and are picked out
by the test's unique database name.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from prometheus_client import CollectorRegistry
from tests.fixtures.kafka import eventually, read_all

from opsmesh.catalogue import QUERY_N_PLUS_ONE, QUERY_P95_REGRESSION
from opsmesh.clock import SystemClock
from opsmesh.db.pool import open_pool
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka import (
    BatchConsumer,
    ConsumerConfig,
    DeadLetterPublisher,
    EventProducer,
    Outgoing,
)
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.consumer import Received
from opsmesh.topics import DLQ, SIGNALS, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock
from query_analyzer.core.fingerprint import fingerprint
from query_analyzer.core.traces import TraceBuffer
from query_analyzer.pipeline.analysis import AnalysisConfig, Analyzer
from query_analyzer.pipeline.signals import KafkaSignalSink, MemorySignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.stats import QueryStats

pytestmark = pytest.mark.integration

START = 1_760_000_000.0


def slow(sql: str, ms: float, at: float, database: str, **extra: Any) -> SlowQueryObserved:
    return SlowQueryObserved(
        sql=sql,
        duration_ms=ms,
        rows=1,
        database=database,
        application="shop",
        started_at=at,
        **extra,
    )


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[Any]:
    pool = await open_pool(infra.pg_dsn, name="qa-test", max_size=4)
    yield pool
    await pool.close()


async def test_events_in_stats_findings_and_signals_out(
    infra: Endpoints, pool: Any, unique: str
) -> None:
    database = f"db_{unique}"
    topic = Topic(f"test.slow.{unique}", 2, "fingerprint")
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    await ensure_topics(connection, [topic, DLQ])
    rng = random.Random(1)
    events = [
        slow(
            f"SELECT * FROM orders WHERE customer_id = {rng.randint(1, 10**6)}",
            100 + i,
            START + i,
            database,
        )
        for i in range(40)
    ]
    trace = {"trace_id": f"t-{unique}", "parent_span_id": "view"}
    events.append(slow("SELECT * FROM posts LIMIT 10", 5, START, database, span_id="s0", **trace))
    events += [
        slow(
            f"SELECT * FROM authors WHERE id = {i}",
            12,
            START + 0.01 * (i + 1),
            database,
            span_id=f"s{i + 1}",
            **trace,
        )
        for i in range(6)
    ]
    plan = [
        {
            "Plan": {
                "Node Type": "Seq Scan",
                "Relation Name": "orders",
                "Filter": "(x = 1)",
                "Plan Rows": 5,
                "Actual Rows": 5,
                "Actual Loops": 1,
                "Rows Removed by Filter": 299_995,
                "Total Cost": 9000,
            }
        }
    ]
    events.append(slow("SELECT * FROM orders WHERE x = 1", 400, START, database, plan=plan))

    producer = EventProducer(connection, source="/test")
    await producer.start()
    registry = CollectorRegistry()
    stage = StatsStage(
        pool=pool,
        stats=QueryStats(pool),
        findings=FindingStore(pool),
        signals=KafkaSignalSink(producer),
        consumer=f"test.qa.{unique}",
        registry=registry,
        clock=SystemClock(),
        traces=TraceBuffer(settle_s=0.5),
    )
    consumer = BatchConsumer(
        connection=connection,
        config=ConsumerConfig(group_id=f"test.qa.{unique}", topics=(topic,)),
        event_type=SlowQueryObserved,
        handler=stage,
        dead_letters=DeadLetterPublisher(
            producer, service="test", clock=SystemClock(), registry=registry
        ),
        registry=registry,
        client_id="test",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await producer.publish_many(
            Outgoing(topic=topic, key=fingerprint(e.sql).value, event=e) for e in events
        )
        stats = QueryStats(pool)
        top = await eventually(
            lambda: stats.top(10, database=database),
            until=lambda rows: sum(r["calls"] for r in rows) == len(events),
            what="all events counted",
        )
        await eventually(
            lambda: FindingStore(pool).findings(limit=50, database=database),
            until=lambda rows: any(f["kind"] == "n_plus_one" for f in rows),
            what="the request read for N+1 runs once quiet",
        )
    finally:
        stop.set()
        await task
        await producer.stop()

    orders = next(
        r for r in top if r["display_sql"] == "SELECT * FROM orders WHERE customer_id = $1"
    )
    assert orders["calls"] == 40
    assert orders["total_ms"] == pytest.approx(sum(100 + i for i in range(40)))
    assert orders["min_ms"] == 100
    assert orders["max_ms"] == 139
    assert orders["p50_ms"] == pytest.approx(119.5, rel=0.02)
    assert orders["p99_ms"] == pytest.approx(138.6, rel=0.02)
    assert top[0]["fingerprint"] == orders["fingerprint"]  # the most total time

    found = await FindingStore(pool).findings(limit=50, database=database)
    kinds = sorted(f["kind"] for f in found)
    assert kinds == ["n_plus_one", "plan_problem", "plan_problem"]
    n1 = next(f for f in found if f["kind"] == "n_plus_one")
    assert n1["evidence"]["repeats"] == 6
    assert n1["evidence"]["total_ms"] == pytest.approx(72)

    records = await read_all(infra.kafka_bootstrap, SIGNALS.name)
    mine = [
        s
        for s in (msgspec.json.decode(r.value, type=SignalObserved) for r in records)
        if s.labels.get("database") == database
    ]
    assert [s.name for s in mine] == [QUERY_N_PLUS_ONE.name]
    assert mine[0].source == "queries"
    assert mine[0].kind == "finding"
    assert mine[0].value == 6


class _Message:
    def __init__(self, topic: str, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset


async def test_a_p95_regression_against_its_baseline_becomes_a_signal(
    pool: Any, unique: str
) -> None:
    database = f"db_{unique}"
    clock = FakeClock(START + 3600)
    signals = MemorySignalSink()
    stage = StatsStage(
        pool=pool,
        stats=QueryStats(pool),
        findings=FindingStore(pool),
        signals=signals,
        consumer=f"test.reg.{unique}",
        registry=CollectorRegistry(),
        clock=clock,
    )
    now = clock.now()
    steady = "SELECT * FROM invoices WHERE id = 1"
    batch = []
    # Baseline: an hour of 20 ms; the last five minutes: 90 ms. Another query stays steady.
    for i in range(300):
        batch.append(slow(steady.replace("invoices", "carts"), 20, now - 3000 + i * 10, database))
        batch.append(slow(steady, 20, now - 3300 + i * 10, database))
    for i in range(60):
        batch.append(slow(steady, 90, now - 290 + i * 4, database))
        batch.append(slow(steady.replace("invoices", "carts"), 21, now - 290 + i * 4, database))
    topic = f"reg.{uuid.uuid4().hex[:6]}"
    await stage.handle([Received(e, _Message(topic, i)) for i, e in enumerate(batch)])
    clock.advance(1)
    analyzer = Analyzer(
        pool=pool,
        signals=signals,
        clock=clock,
        config=AnalysisConfig(),
        target=None,
        target_database=None,
    )
    report = await analyzer.run_once()
    mine = [s for s in signals.published if s.labels.get("database") == database]
    assert [s.name for s in mine] == [QUERY_P95_REGRESSION.name]
    assert mine[0].labels["fingerprint"] == fingerprint(steady).value
    assert mine[0].stats["p95_now_ms"] == pytest.approx(90, rel=0.02)
    assert mine[0].stats["p95_baseline_ms"] == pytest.approx(20, rel=0.02)
    assert [r["fingerprint"] for r in report.regressions if r["database"] == database] == [
        fingerprint(steady).value
    ]
    found = await FindingStore(pool).findings(limit=10, kind="p95_regression", database=database)
    assert len(found) == 1
