"""The rollup history's retention over real PostgreSQL, in simulated time: expired days
are dropped whole and younger days keep every row; a drop that would queue behind a
reader gives way and is done by the next run; replicas maintaining together agree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.rollup.closed import ClosedWindow
from metrics_ingest.rollup.retention import RetentionPolicy, day_of, partition_name
from opsmesh.db.pool import open_pool
from opsmesh.db.retention import days
from opsmesh.events.metrics import MetricKind
from opsmesh.labels import series_id
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration

# 1998: days no other test writes (each test its own year-day range, so a drop in one
# never meets another's partitions).
T0 = 900_000_000.0


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(infra.pg_dsn, name="tests-metrics-retention")
    try:
        yield opened
    finally:
        await opened.close()


def window(name: str, start: float) -> ClosedWindow:
    return ClosedWindow(
        series=series_id(name, {}),
        name=name,
        kind=MetricKind.GAUGE,
        labels={},
        start=start,
        end=start + 10,
        count=1,
        total=1.0,
        minimum=1.0,
        maximum=1.0,
        last=1.0,
        increase=0.0,
    )


async def starts(pool: AsyncConnectionPool, name: str) -> list[float]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT extract(epoch FROM window_start)::float8 FROM metrics_ingest.rollups"
            " WHERE name = %s ORDER BY window_start",
            (name,),
        )
        return [r[0] for r in await cursor.fetchall()]


async def written(history: RollupHistory, name: str, *at: float) -> None:
    """Windows written when they closed (a write checks retention against its own now)."""
    for start in at:
        assert await history.store([window(name, start)], start + 60) == 0


async def test_expired_days_are_dropped_whole_and_younger_days_keep_their_rows(
    pool: AsyncConnectionPool, unique: str
) -> None:
    name = f"kept_{unique}"
    history = RollupHistory(pool, RetentionPolicy(retention_days=30, create_ahead_days=1))
    old, young = T0 - days(32), T0 - days(29)
    await written(history, name, old, old + 3600, young, T0 - 60)

    done = await history.maintain(T0)

    assert day_of(old) in done.drop
    assert day_of(young) not in done.drop
    assert await starts(pool, name) == [young, T0 - 60]
    days_now = await history.partitions()
    assert day_of(old) not in days_now
    assert {day_of(young), day_of(T0), day_of(T0 + days(1))} <= set(days_now)


async def test_a_drop_gives_way_to_a_reader_and_the_next_run_does_it(
    pool: AsyncConnectionPool, infra: Endpoints, unique: str
) -> None:
    name = f"read_{unique}"
    at = T0 + days(100)
    history = RollupHistory(pool, RetentionPolicy(retention_days=30, create_ahead_days=0))
    old = at - days(40)
    await written(history, name, old)
    async with await psycopg.AsyncConnection.connect(infra.pg_dsn) as reader:
        # A long read of the history holds the table (ACCESS SHARE) until it ends.
        await reader.execute("SELECT count(*) FROM metrics_ingest.rollups WHERE name = %s", (name,))
        done = await history.maintain(at)
        assert day_of(old) not in done.drop, "not dropped while read: it would queue every write"
        assert day_of(old) in await history.partitions()
        await reader.rollback()

    done = await history.maintain(at)

    assert day_of(old) in done.drop
    assert day_of(old) not in await history.partitions()
    assert await starts(pool, name) == []


async def test_replicas_maintaining_together_both_succeed(
    pool: AsyncConnectionPool, unique: str
) -> None:
    name = f"twice_{unique}"
    at = T0 + days(200)
    policy = RetentionPolicy(retention_days=30, create_ahead_days=2)
    first, second = RollupHistory(pool, policy), RollupHistory(pool, policy)
    old = [at - days(31 + i) for i in range(3)]
    await written(first, name, *old)

    plans = list(await asyncio.gather(first.maintain(at), second.maintain(at)))  # no error
    # A step that gave way to the other replica's lock (held past 2 s by a slow commit on
    # a loaded machine) is done by the next run, as in service.
    plans.append(await second.maintain(at))

    dropped = {d for p in plans for d in p.drop}
    assert {day_of(t) for t in old} <= dropped
    assert not {day_of(t) for t in old} & set(await first.partitions())
    assert {day_of(at + days(i)) for i in range(3)} <= set(await second.partitions())
    for day in (day_of(t) for t in old):
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT to_regclass(%s)", (f"metrics_ingest.{partition_name(day)}",)
            )
            assert (await cursor.fetchone()) == (None,)
