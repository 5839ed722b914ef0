"""query-analyzer's retention over real PostgreSQL, in simulated time: windows older than
their retention go, and so do fingerprints, findings, plans and advice not seen again for
theirs; everything younger stays."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from opsmesh.db.retention import Purger, PurgeStop, RetentionMetrics, days
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock
from query_analyzer.core.sketch import Sketch
from query_analyzer.storage.retention import purge_jobs

pytestmark = pytest.mark.integration

T0 = 1_000_000_000.0  # 2001: older than every row other tests write
WINDOW_DAYS, RETENTION_DAYS = 14, 30


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=2, open=False) as p:
        yield p


async def seed(pool: AsyncConnectionPool, fp: str, db: str, at: float, windows: int) -> None:
    """One fingerprint last seen at ``at``: its totals, ``windows`` windows ending there,
    a finding, a plan and a recommendation."""
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO query_analyzer.query_stats (fingerprint, database, fingerprint_kind,"
            " fingerprint_version, display_sql, sample_sql, calls, total_ms, min_ms, max_ms,"
            " rows, last_seen) VALUES (%s, %s, 'pglast', 'v1', 'SELECT ?', 'SELECT 1', 1, 1,"
            " 1, 1, 1, to_timestamp(%s))",
            (fp, db, at),
        )
        await cur.executemany(
            "INSERT INTO query_analyzer.query_windows (fingerprint, database,"
            " fingerprint_version, window_start, calls, total_ms, min_ms, max_ms, rows, sketch)"
            " VALUES (%s, %s, 'v1', to_timestamp(%s), 1, 1, 1, 1, 1, %s)",
            # A real sketch: other tests' services read every window of this database.
            [(fp, db, at - 60 * i, Jsonb(Sketch().to_json())) for i in range(windows)],
        )
        await cur.execute(
            "INSERT INTO query_analyzer.findings (id, kind, fingerprint, database, title,"
            " evidence, first_seen, last_seen)"
            " VALUES (%s, 'n_plus_one', %s, %s, 't', '{}', to_timestamp(%s), to_timestamp(%s))",
            (f"f-{fp}", fp, db, at, at),
        )
        await cur.execute(
            "INSERT INTO query_analyzer.plans (fingerprint, database, source, plan, problems,"
            " captured_at) VALUES (%s, %s, 'explain', '{}', '[]', to_timestamp(%s))",
            (fp, db, at),
        )
        await cur.execute(
            "INSERT INTO query_analyzer.recommendations (fingerprint, database, reason,"
            " validated, evidence, updated_at)"
            " VALUES (%s, %s, 'no_candidate', false, '{}', to_timestamp(%s))",
            (fp, db, at),
        )


async def counts(pool: AsyncConnectionPool, fp: str) -> dict[str, int]:
    found = {}
    async with pool.connection() as conn:
        for table in ("query_stats", "query_windows", "findings", "plans", "recommendations"):
            cursor = await conn.execute(
                f"SELECT count(*) FROM query_analyzer.{table} WHERE fingerprint = %s",
                (fp,),
            )
            row = await cursor.fetchone()
            found[table] = row[0] if row else 0
    return found


async def test_each_table_keeps_its_retention(pool: AsyncConnectionPool) -> None:
    db = f"db_{uuid.uuid4().hex[:8]}"
    gone = f"gone{uuid.uuid4().hex[:8]}"  # last seen 31 days ago
    quiet = f"quiet{uuid.uuid4().hex[:8]}"  # last seen 20 days ago
    live = f"live{uuid.uuid4().hex[:8]}"  # seen a minute ago
    await seed(pool, gone, db, T0 - days(RETENTION_DAYS + 1), windows=3)
    await seed(pool, quiet, db, T0 - days(20), windows=3)
    await seed(pool, live, db, T0 - 60, windows=25)
    registry = CollectorRegistry()
    purger = Purger(
        purge_jobs(pool, window_retention_days=WINDOW_DAYS, retention_days=RETENTION_DAYS),
        clock=FakeClock(T0),
        metrics=RetentionMetrics(registry),
        interval_s=600,
        batch_rows=2,
    )

    reports = {r.table: r for r in await purger.run_once()}

    assert all(r.stopped is PurgeStop.DONE for r in reports.values())
    assert (
        reports["query_analyzer.query_windows"].rows,
        reports["query_analyzer.query_windows"].batches,
    ) == (
        6,
        4,
    ), "the windows of both quiet fingerprints, two per statement"
    assert await counts(pool, gone) == dict.fromkeys(
        ("query_stats", "query_windows", "findings", "plans", "recommendations"), 0
    )
    assert await counts(pool, quiet) == {
        "query_stats": 1,
        "query_windows": 0,  # past the 14-day window retention
        "findings": 1,
        "plans": 1,
        "recommendations": 1,
    }
    assert await counts(pool, live) == {
        "query_stats": 1,
        "query_windows": 25,
        "findings": 1,
        "plans": 1,
        "recommendations": 1,
    }
    assert (
        registry.get_sample_value(
            "opsmesh_retention_purged_rows_total", {"table": "query_analyzer.findings"}
        )
        == 1
    )
