"""Batched retention purges against real PostgreSQL: old rows go, young ones stay, each
statement takes at most a batch, a row a writer holds is not waited on, and replicas
running the same purge together delete every old row once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from opsmesh.db.retention import (
    Purger,
    PurgeStop,
    RetentionMetrics,
    TablePurge,
    TimeColumn,
    _lock_key,
    days,
)
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration

T0 = 1_000_000_000.0  # 2001: far from every other test's rows


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=4, open=False) as p:
        yield p


@pytest.fixture
async def table(pool: AsyncConnectionPool) -> AsyncIterator[str]:
    name = f"retention_{uuid.uuid4().hex[:8]}"
    async with pool.connection() as conn:
        await conn.execute(
            f"CREATE TABLE public.{name} (id int PRIMARY KEY, at timestamptz NOT NULL,"
            " at_s double precision NOT NULL)"
        )
        await conn.execute(f"CREATE INDEX ON public.{name} (at)")
        await conn.execute(f"CREATE INDEX ON public.{name} (at_s)")
    yield f"public.{name}"
    async with pool.connection() as conn:
        await conn.execute(f"DROP TABLE public.{name}")


async def fill(pool: AsyncConnectionPool, table: str, times: list[float]) -> None:
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            f"INSERT INTO {table} (id, at, at_s) VALUES (%s, to_timestamp(%s), %s)",
            [(i, t, t) for i, t in enumerate(times)],
        )


async def remaining(pool: AsyncConnectionPool, table: str) -> list[int]:
    async with pool.connection() as conn:
        cursor = await conn.execute(f"SELECT id FROM {table} ORDER BY id")
        return [r[0] for r in await cursor.fetchall()]


def purger(*jobs: TablePurge, batch_rows: int = 10, max_batches: int = 100) -> Purger:
    return Purger(
        jobs,
        clock=FakeClock(T0),
        metrics=RetentionMetrics(CollectorRegistry()),
        interval_s=600,
        batch_rows=batch_rows,
        max_batches=max_batches,
    )


@pytest.mark.parametrize(
    ("column", "column_type"), [("at", TimeColumn.TIMESTAMPTZ), ("at_s", TimeColumn.EPOCH_SECONDS)]
)
async def test_old_rows_go_in_batches_and_young_rows_stay(
    pool: AsyncConnectionPool, table: str, column: str, column_type: TimeColumn
) -> None:
    old = [T0 - days(31) - i // 3 for i in range(25)]  # equal times across batch edges
    young = [T0 - days(29), T0 - 1, T0 + 60]
    await fill(pool, table, old + young)
    job = TablePurge(pool, table, column, days(30), column_type=column_type)

    deleted = [b.deleted async for b in job.batches(T0 - days(30), 10)]

    assert deleted == [10, 10, 5], "no statement takes more than a batch"
    assert await remaining(pool, table) == [25, 26, 27]


async def test_a_run_is_bounded_and_the_rest_goes_in_the_next(
    pool: AsyncConnectionPool, table: str
) -> None:
    await fill(pool, table, [T0 - days(40)] * 35)
    run = purger(TablePurge(pool, table, "at", days(30)), batch_rows=10, max_batches=2)

    (first,) = await run.run_once()
    assert (first.rows, first.stopped) == (20, PurgeStop.BATCH_LIMIT)
    assert len(await remaining(pool, table)) == 15
    (second,) = await run.run_once()
    assert (second.rows, second.stopped) == (15, PurgeStop.DONE)
    assert await remaining(pool, table) == []


async def test_a_row_a_writer_holds_is_skipped_not_waited_on(
    pool: AsyncConnectionPool, table: str, infra: Endpoints
) -> None:
    await fill(pool, table, [T0 - days(40)] * 3)
    job = TablePurge(pool, table, "at", days(30))
    async with await psycopg.AsyncConnection.connect(infra.pg_dsn) as writer:
        await writer.execute(f"SELECT * FROM {table} WHERE id = 1 FOR UPDATE")
        deleted = [b.deleted async for b in job.batches(T0 - days(30), 10)]
        await writer.rollback()
    assert deleted == [2]
    assert await remaining(pool, table) == [1], "left for the next run"


async def test_another_replica_holding_the_table_makes_this_one_leave_it(
    pool: AsyncConnectionPool, table: str, infra: Endpoints
) -> None:
    await fill(pool, table, [T0 - days(40)] * 3)
    run = purger(TablePurge(pool, table, "at", days(30)))
    async with await psycopg.AsyncConnection.connect(infra.pg_dsn) as other:
        await other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x6F707267, _lock_key(table)))
        (report,) = await run.run_once()
        await other.rollback()
    assert (report.stopped, report.rows) == (PurgeStop.BUSY, 0)
    assert len(await remaining(pool, table)) == 3
    (report,) = await run.run_once()
    assert report.rows == 3, "once released, the next run purges"


async def test_replicas_purging_together_delete_every_old_row_once(
    pool: AsyncConnectionPool, table: str
) -> None:
    await fill(pool, table, [T0 - days(40) - i for i in range(200)] + [T0])
    registries = [CollectorRegistry(), CollectorRegistry(), CollectorRegistry()]
    replicas = [
        Purger(
            [TablePurge(pool, table, "at", days(30))],
            clock=FakeClock(T0),
            metrics=RetentionMetrics(r),
            interval_s=600,
            batch_rows=7,
        )
        for r in registries
    ]

    # Until every old row is gone: a replica that finds the table held leaves it.
    while len(await remaining(pool, table)) > 1:
        await asyncio.gather(*(r.run_once() for r in replicas))

    assert await remaining(pool, table) == [200]
    counted = sum(
        r.get_sample_value("opsmesh_retention_purged_rows_total", {"table": table}) or 0
        for r in registries
    )
    assert counted == 200, "every row counted once, by the replica that deleted it"


async def test_the_purge_finds_old_rows_through_the_time_index(
    pool: AsyncConnectionPool, table: str
) -> None:
    """With expired rows a small part of the table (a purge that keeps up), a batch finds
    them by an index range scan, not by reading the table."""
    await fill(pool, table, [T0 - days(40) - i for i in range(20)] + [T0] * 5000)
    async with pool.connection() as conn:
        await conn.execute(f"ANALYZE {table}")
        cursor = await conn.execute(
            f"EXPLAIN (FORMAT JSON) SELECT ctid FROM {table}"
            " WHERE at < to_timestamp(%s) LIMIT 10 FOR UPDATE SKIP LOCKED",
            (T0 - days(30),),
        )
        plan = str((await cursor.fetchone())[0])
    assert "Index Scan" in plan or "Bitmap Index Scan" in plan, plan


def test_a_retention_must_be_positive(infra: Endpoints) -> None:
    with pytest.raises(ValueError, match="positive"):
        TablePurge(AsyncConnectionPool(infra.pg_dsn, open=False), "public.t", "at", 0)
