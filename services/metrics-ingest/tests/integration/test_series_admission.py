"""The per-metric series limit holds for the whole consumer group: replicas confirm new
series in PostgreSQL, where two of them racing for a metric's last slots cannot both
take them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.pipeline.admission import PgSeriesAdmission
from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.cardinality import SeriesLimits, SeriesRefusal
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import MemoryHistory, MemoryPublisher
from opsmesh.catalogue import METRICS_SERIES_LIMITED
from opsmesh.db.pool import open_pool
from opsmesh.events.metrics import MetricSampledFields
from opsmesh.kafka.consumer import Received
from opsmesh.labels import series_id
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_400.0


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(infra.pg_dsn, name="tests-series-admission")
    try:
        yield opened
    finally:
        await opened.close()


def replica(
    admission: PgSeriesAdmission, clock: FakeClock, limit: int
) -> tuple[RollupStage, MemoryHistory, MemoryPublisher]:
    history, signals = MemoryHistory(), MemoryPublisher()
    stage = RollupStage(
        rollups=Rollups(WindowConfig((10.0,), 0.0, 0.0, max_series_per_metric=limit)),
        history=history,
        producer=signals,
        clock=clock,
        registry=CollectorRegistry(),
        max_series_per_metric=limit,
        admission=admission,
    )
    return stage, history, signals


def records(
    name: str, hosts: str, partition: int, at: float, first: int = 0
) -> list[Received[MetricSampledFields]]:
    out = []
    for i, host in enumerate(hosts):
        event = MetricSampledFields(name=name, value=1.0, labels={"host": host}, sampled_at=at)
        message = ConsumerRecord(
            "opsmesh.metrics", partition, first + i, 0, 0, None, b"{}", None, -1, 2, ()
        )
        out.append(Received(event, message))
    return out


async def test_two_replicas_share_one_limit_per_metric(
    pool: AsyncConnectionPool, unique: str
) -> None:
    name = f"cpu_{unique}"
    clock = FakeClock(T0 + 100)
    admission = PgSeriesAdmission(pool, SeriesLimits(per_metric=3))
    one, one_history, _ = replica(admission, clock, limit=3)
    two, two_history, two_signals = replica(admission, clock, limit=3)

    await one.handle(records(name, "ab", partition=0, at=T0))
    await two.handle(records(name, "cde", partition=1, at=T0))
    await one.handle(records(name, "ab", partition=0, at=T0 + 20, first=2))
    await two.handle(records(name, "cde", partition=1, at=T0 + 20, first=3))

    held = {w.labels["host"] for w in one_history.windows + two_history.windows}
    assert held == {"a", "b", "c"}, "each replica alone would have taken three"
    limited = [o.event for o in two_signals.items if o.event.name == METRICS_SERIES_LIMITED.name]
    assert [s.stats for s in limited] == [{"limit": 3.0, "rejected": 2.0}] * 2, (
        "d and e refused in the first batch, rejected at once in the second"
    )
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT series FROM metrics_ingest.series_admitted WHERE name = %s ORDER BY 1", (name,)
        )
        assert [r[0] for r in await cursor.fetchall()] == [
            series_id(name, {"host": h}) for h in "abc"
        ]


async def test_racing_admissions_never_exceed_the_limit(
    pool: AsyncConnectionPool, unique: str
) -> None:
    name = f"race_{unique}"
    admission = PgSeriesAdmission(pool, SeriesLimits(per_metric=10))
    candidates = [[(name, f'{name}{{r="{r}",i="{i}"}}') for i in range(8)] for r in range(4)]
    refused = await asyncio.gather(*(admission.admit(c, time.time()) for c in candidates))
    assert sum(len(r) for r in refused) == 32 - 10
    again = await admission.admit(candidates[0], time.time())
    admitted_first = {key for key in candidates[0] if key not in {k for k, _ in refused[0]}}
    assert {key for key, _ in again} == set(candidates[0]) - admitted_first, (
        "admitted series stay admitted"
    )
    assert {reason for r in refused for _, reason in r} == {SeriesRefusal.PER_METRIC}


async def test_released_and_purged_series_free_their_slots(
    pool: AsyncConnectionPool, unique: str
) -> None:
    name = f"slots_{unique}"
    admission = PgSeriesAdmission(pool, SeriesLimits(per_metric=2))
    a, b, c = ((name, f"{name}-{x}") for x in "abc")
    now = time.time()
    assert await admission.admit([a, b, c], now - 600) == [(c, SeriesRefusal.PER_METRIC)]
    await admission.release([a])
    assert await admission.admit([c], now - 600) == []
    await admission.touch([c], now)
    await admission.purge(now - 300)  # b was last seen ten minutes ago: its replica is gone
    assert await admission.admit([a], now) == []
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT series FROM metrics_ingest.series_admitted WHERE name = %s ORDER BY 1", (name,)
        )
        assert [r[0] for r in await cursor.fetchall()] == [a[1], c[1]]
