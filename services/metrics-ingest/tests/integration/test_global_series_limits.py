"""The global series limits (series in all, distinct metric names) hold for the whole
consumer group: samples through real Kafka into two replicas' stages, admission in a real
PostgreSQL of this module's own (the limits count every row of ``series_admitted``, so
the session's database, shared with other tests and the e2e mesh, would not do)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool
from tests.fixtures.kafka import eventually, run_consumer

from metrics_ingest.pipeline.admission import PgSeriesAdmission
from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.cardinality import SeriesLimits, SeriesRefusal
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import MemoryHistory, MemoryPublisher
from opsmesh.db.migrations import apply_all
from opsmesh.db.pool import open_pool
from opsmesh.events.metrics import MetricSampled
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.admin import ensure_topics
from opsmesh.labels import series_id
from opsmesh.topics import DLQ, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.testing.clock import FakeClock

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

T0 = 1_700_000_400.0
LIMITS = SeriesLimits(per_metric=100, series=4, metric_names=3)


@pytest.fixture(scope="module")
def private_dsn() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-limits-"))
    workdir.chmod(0o755)  # the server's own user must reach its data directory
    server = PostgresServer(workdir / "postgres")
    try:
        dsn = server.start()
        asyncio.run(apply_all(dsn))
        yield dsn
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def pool(private_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(private_dsn, name="tests-global-limits")
    async with opened.connection() as conn:  # each test starts from an empty group
        await conn.execute("DELETE FROM metrics_ingest.series_admitted")
        await conn.execute("UPDATE metrics_ingest.series_totals SET series = 0, names = 0")
    try:
        yield opened
    finally:
        await opened.close()


async def _rows(pool: AsyncConnectionPool) -> tuple[int, int, tuple[int, int]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*), count(DISTINCT name) FROM metrics_ingest.series_admitted"
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), await PgSeriesAdmission(pool, LIMITS).totals()


async def test_racing_admissions_never_exceed_the_global_limits(
    pool: AsyncConnectionPool,
) -> None:
    admission = PgSeriesAdmission(pool, LIMITS)
    candidates = [[(f"m{r}{i % 2}", f"s{r}-{i}") for i in range(4)] for r in range(4)]
    refused = await asyncio.gather(*(admission.admit(c, time.time()) for c in candidates))
    reasons = [reason for r in refused for _, reason in r]
    assert len(reasons) == 16 - 4
    assert set(reasons) <= {SeriesRefusal.SERIES, SeriesRefusal.METRIC_NAMES}
    series, names, totals = await _rows(pool)
    assert series == 4
    assert names <= 3
    assert totals == (series, names), "the totals follow the rows"


async def test_released_and_purged_series_are_recounted(pool: AsyncConnectionPool) -> None:
    admission = PgSeriesAdmission(pool, LIMITS)
    now = time.time()
    keys = [("a", "a1"), ("a", "a2"), ("b", "b1"), ("c", "c1")]
    assert await admission.admit(keys, now - 600) == []
    assert await admission.admit([("a", "a3")], now) == [(("a", "a3"), SeriesRefusal.SERIES)]
    await admission.release([("c", "c1")])
    assert await _rows(pool) == (3, 2, (3, 2))
    await admission.touch([("a", "a1")], now)
    await admission.purge(now - 300)  # a2 and b1: their replica went away
    assert await _rows(pool) == (1, 1, (1, 1))
    assert await admission.admit([("d", "d1"), ("e", "e1"), ("f", "f1")], now) == [
        (("f", "f1"), SeriesRefusal.METRIC_NAMES)
    ]


def _replica(admission: PgSeriesAdmission, clock: FakeClock) -> tuple[RollupStage, MemoryHistory]:
    history = MemoryHistory()
    stage = RollupStage(
        rollups=Rollups(
            WindowConfig(
                (10.0,),
                0.0,
                0.0,
                max_series_per_metric=LIMITS.per_metric,
                max_series=LIMITS.series,
                max_metric_names=LIMITS.metric_names,
            )
        ),
        history=history,
        producer=MemoryPublisher(),
        clock=clock,
        registry=CollectorRegistry(),
        limits=LIMITS,
        admission=admission,
    )
    return stage, history


async def test_two_replicas_over_kafka_share_the_global_limits(
    infra: Endpoints, pool: AsyncConnectionPool, unique: str
) -> None:
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    topic = Topic(f"test.limits.{unique}", 2, "series id")
    await ensure_topics(connection, [topic, DLQ])
    # 6 names x 2 series, then a sample a minute later in each series so windows close.
    samples = [
        MetricSampled(name=f"n{n}_{unique}", value=1.0, labels={"i": str(i)}, sampled_at=at)
        for at in (T0, T0 + 60)
        for n in range(6)
        for i in range(2)
    ]
    producer = EventProducer(connection, source="/tests/limits")
    await producer.start()
    clock = FakeClock(T0 + 120)
    admission = PgSeriesAdmission(pool, LIMITS)
    replicas = [_replica(admission, clock) for _ in range(2)]
    # Published before the consumers join, so their first assignment knows the topic.
    await producer.publish_many(
        Outgoing(topic, series_id(s.name, s.labels), s, partition=i % 2)
        for i, s in enumerate(samples)
    )
    running = [
        await run_consumer(connection, topic, f"g.{unique}", stage, producer)
        for stage, _ in replicas
    ]
    try:

        async def refused() -> float:
            return sum(
                stage._refused[reason]._value.get()
                for stage, _ in replicas
                for reason in SeriesRefusal
            )

        # Every sample of a refused series is counted once: 12 series, 4 admitted.
        await eventually(
            refused, until=lambda n: n == 16, what="refused samples counted", timeout_s=60
        )
        held = await eventually(
            lambda: _closed_series(replicas), until=lambda s: len(s) == 4, what="windows"
        )
    finally:
        for stop, _task, _ in running:
            stop.set()
        await asyncio.gather(*(task for _, task, _ in running))
        await producer.stop()

    assert len({name for name, _ in held}) <= LIMITS.metric_names
    series, names, totals = await _rows(pool)
    assert (series, totals) == (4, (4, names))
    active = sum(stage._series_active._value.get() for stage, _ in replicas)
    assert active == 4


async def _closed_series(
    replicas: list[tuple[RollupStage, MemoryHistory]],
) -> set[tuple[str, str]]:
    return {(w.name, w.series) for _, history in replicas for w in history.windows}
