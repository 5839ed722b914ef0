"""Retention purges under write load: how fast a backlog goes, and what it costs writers.

``uv run python -m bench.retention [rows] [seconds]`` starts its own PostgreSQL and fills
``notifier.delivery_log`` with ``rows`` rows (default 1,000,000), half of them past the
retention. Then, for ``seconds`` (default 20) each phase:

1. a writer inserts delivery rows as the notifier records them (one multi-row INSERT of
   500 rows per statement, back to back), alone: its statement latencies (p50/p99/max);
2. the same writer while the purger (``opsmesh.db.retention``, batches of 1,000) works
   through the backlog: purge rate (rows/s), per-batch latency, and the writer's
   latencies again.

Everything shares the 2-core machine, so the figures are lower bounds.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from notifier.delivery.retention import purge_jobs
from opsmesh.clock import SystemClock
from opsmesh.db.migrations import apply_all
from opsmesh.db.retention import Batch, PurgeJob, Purger, PurgeStop, RetentionMetrics
from opsmesh_dev.infra.postgres import PostgresServer

RETENTION_DAYS = 35
WRITE_BATCH = 500


def quantiles(samples: list[float]) -> str:
    if not samples:
        return "n/a"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms,"
        f" max {ordered[-1] * 1000:.1f} ms ({len(ordered)} statements)"
    )


async def fill(dsn: str, rows: int) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO notifier.delivery_log (idempotency_key, integration, receiver,"
            " channel, outcome, attempts, status_code, finished_at)"
            " SELECT 'bench-' || g, 'webhook-0', 'default', 'webhook', 'delivered', 1, 200,"
            " CASE WHEN g %% 2 = 0 THEN now() - interval '40 days' - g * interval '1 second'"
            " ELSE now() - (g %% 1000) * interval '1 minute' END"
            " FROM generate_series(1, %s) g",
            (rows,),
        )
        await conn.execute("VACUUM ANALYZE notifier.delivery_log")


async def writer(pool: AsyncConnectionPool, stop: asyncio.Event, tag: str) -> list[float]:
    latencies = []
    n = 0
    while not stop.is_set():
        keys = [f"w-{tag}-{n + i}" for i in range(WRITE_BATCH)]
        n += WRITE_BATCH
        started = time.perf_counter()
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO notifier.delivery_log (idempotency_key, integration, receiver,"
                " channel, outcome, attempts) SELECT k, 'webhook-0', 'default', 'webhook',"
                " 'delivered', 1 FROM unnest(%s::text[]) AS k",
                (keys,),
            )
        latencies.append(time.perf_counter() - started)
    return latencies


class TimedJob:
    """A purge job whose batches are timed."""

    def __init__(self, job: PurgeJob, timings: list[float]) -> None:
        self._job = job
        self.table = job.table
        self.column = job.column
        self.retention_s = job.retention_s
        self._timings = timings

    async def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]:
        started = time.perf_counter()
        async for batch in self._job.batches(cutoff, limit):
            self._timings.append(time.perf_counter() - started)
            yield batch
            started = time.perf_counter()


async def run(dsn: str, rows: int, seconds: float) -> None:
    print(f"filling {rows:,} rows (half expired)...", flush=True)
    await fill(dsn, rows)
    async with AsyncConnectionPool(dsn, min_size=2, max_size=4, open=False) as pool:
        stop = asyncio.Event()
        alone = asyncio.create_task(writer(pool, stop, "alone"))
        await asyncio.sleep(seconds)  # a benchmark phase, not synchronisation
        stop.set()
        print(f"writer alone:        {quantiles(await alone)}")

        (delivery, _) = purge_jobs(pool, delivery_retention_days=RETENTION_DAYS)
        timings: list[float] = []
        purger = Purger(
            [TimedJob(delivery, timings)],
            clock=SystemClock(),
            metrics=RetentionMetrics(CollectorRegistry()),
            interval_s=3600,
            batch_rows=1_000,
            max_batches=1_000_000,
        )
        stop = asyncio.Event()
        during = asyncio.create_task(writer(pool, stop, "during"))
        started = time.perf_counter()
        (report,) = await purger.run_once()
        purge_s = time.perf_counter() - started
        if purge_s < seconds:
            await asyncio.sleep(seconds - purge_s)
        stop.set()
        assert report.stopped is PurgeStop.DONE, report
        print(
            f"purge:               {report.rows:,} rows in {purge_s:.1f} s"
            f" ({report.rows / purge_s:,.0f} rows/s), {report.batches} batches"
        )
        slowest = max(range(len(timings)), key=timings.__getitem__) if timings else -1
        print(f"purge batch:         {quantiles(timings)}; slowest: batch {slowest + 1}")
        print(f"writer during purge: {quantiles(await during)}")
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM notifier.delivery_log"
                " WHERE finished_at < now() - make_interval(days => %s)",
                (RETENTION_DAYS,),
            )
            left = (await cursor.fetchone() or (0,))[0]
        print(f"expired rows left:   {left}")


def main() -> int:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    workdir = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    workdir.chmod(0o755)
    server = PostgresServer(workdir / "postgres")
    try:
        server.start()
        asyncio.run(apply_all(server.dsn))
        asyncio.run(run(server.dsn, rows, seconds))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
