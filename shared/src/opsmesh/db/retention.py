"""Retention: periodic, batched purges of the tables that grow with traffic.

Each service lists its purge jobs (one per table, with the table's retention) and runs
them with one ``Purger`` worker. A job deletes in batches of at most ``batch_rows`` rows,
one short transaction each, so no statement is unbounded and no lock is held for long:
rows are picked through an index on the time column (``LIMIT``, ``FOR UPDATE SKIP
LOCKED``, so a row a writer holds is left for the next run instead of waited on) and
deleted by ``ctid``. Each batch sets ``lock_timeout`` and ``statement_timeout`` locally: a
purge gives way rather than queue other sessions behind it.

Replicas: deletes are idempotent (a row is either older than the cutoff or not), so
several replicas running the same job cannot do harm; a per-table advisory lock taken
with ``pg_try_advisory_xact_lock`` in each batch keeps them from doing the same work
twice — a replica that finds it held leaves the table to the one that holds it until its
next run.

Times come from the injected clock: the cutoff is ``clock.now() - retention``, never the
database's ``now()``, so tests move time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import math
import zlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from opsmesh.clock import Clock
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, NextRun, Periodic, periodic_metrics
from opsmesh.topics import DLQ, NOTIFICATIONS

log = get_logger(__name__)

DAY_S = 86_400.0
# The advisory-lock namespace of purges (the first key of the two-key form); the second
# key is the table's CRC-32. "oprg".
_LOCK_NAMESPACE = 0x6F707267


# How long a notification request can come back to the notifier after it was handled: a
# consumer group whose offsets were reset re-reads the requests topic as far back as it
# keeps records, and ``opsmesh dlq replay`` resends dead letters as long as the DLQ keeps
# them. The notifier's delivery log must remember keys at least this long.
NOTIFICATION_REDELIVERY_DAYS = max(NOTIFICATIONS.retention_ms, DLQ.retention_ms) / 1000 / DAY_S


def days(n: float) -> float:
    """``n`` days in seconds (settings are in days, jobs in seconds)."""
    return n * DAY_S


class TimeColumn(enum.StrEnum):
    """How a table stores the time its retention is measured from."""

    TIMESTAMPTZ = "timestamptz"
    EPOCH_SECONDS = "epoch_seconds"  # double precision seconds since the Unix epoch


class PurgeStop(enum.StrEnum):
    """Why one table's purge run ended (logs and the caller's next wait)."""

    DONE = "done"  # a short batch: nothing older than the cutoff is left
    BUSY = "busy"  # another replica holds the table's purge lock; it carries on
    BATCH_LIMIT = "batch_limit"  # this run's share of batches used; the rest runs next
    STOPPED = "stopped"  # the service is stopping
    FAILED = "failed"  # an error (logged); the next run tries again


@dataclass(frozen=True, slots=True)
class Batch:
    deleted: int
    more: bool = False  # the batch was full: older rows may be left
    busy: bool = False  # another replica holds this table: stop for this run


class PurgeJob(Protocol):
    """One table's retention. ``batches`` deletes rows older than ``cutoff`` (epoch
    seconds) at most ``limit`` per batch, yielding each batch's outcome, and ends after
    a batch with ``more`` false."""

    @property
    def table(self) -> str: ...

    @property
    def column(self) -> str:
        """The time column the retention is measured on (indexed)."""
        ...

    @property
    def retention_s(self) -> float: ...

    def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]: ...


def _lock_key(table: str) -> int:
    """The table's CRC-32 as the signed 32-bit key PostgreSQL's two-key lock takes."""
    crc = zlib.crc32(table.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class TablePurge:
    """Deletes rows whose ``column`` is older than the cutoff, in bounded batches. The
    table needs an index whose first column is ``column`` (the migrations add them; a
    contract test checks every service's jobs)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        table: str,
        column: str,
        retention_s: float,
        *,
        column_type: TimeColumn = TimeColumn.TIMESTAMPTZ,
        lock_timeout_ms: int = 2_000,
        statement_timeout_ms: int = 30_000,
    ) -> None:
        if retention_s <= 0:
            raise ValueError(f"{table}: retention must be positive, got {retention_s}")
        schema, _, name = table.rpartition(".")
        self._pool = pool
        self.table = table
        self.column = column
        self.retention_s = retention_s
        self._timeouts = (f"{lock_timeout_ms}ms", f"{statement_timeout_ms}ms")
        target = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        col = sql.Identifier(column)
        at, epoch = sql.SQL("{}"), sql.SQL("{}").format(col)
        if column_type is TimeColumn.TIMESTAMPTZ:
            at = sql.SQL("to_timestamp({})")
            epoch = sql.SQL("extract(epoch FROM {})::float8").format(col)
        # Oldest first, each batch from where the previous one ended (the newest time it
        # deleted): the index range a batch walks does not start over the entries the
        # earlier batches left dead, which vacuum has not removed yet.
        self._delete = sql.SQL(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM {table} WHERE {col} >= {after} AND {col} < {cutoff}"
            " ORDER BY {col} LIMIT %(limit)s FOR UPDATE SKIP LOCKED))"
            " RETURNING {epoch}"
        ).format(
            table=target,
            col=col,
            after=at.format(sql.Placeholder("after")),
            cutoff=at.format(sql.Placeholder("cutoff")),
            epoch=epoch,
        )

    async def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]:
        after = -math.inf
        while True:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(
                    "SELECT set_config('lock_timeout', %s, true),"
                    " set_config('statement_timeout', %s, true)",
                    self._timeouts,
                )
                cursor = await conn.execute(
                    "SELECT pg_try_advisory_xact_lock(%s, %s)",
                    (_LOCK_NAMESPACE, _lock_key(self.table)),
                )
                row = await cursor.fetchone()
                held = bool(row and row[0])
                times: list[float] = []
                if held:
                    cursor = await conn.execute(
                        self._delete, {"after": after, "cutoff": cutoff, "limit": limit}
                    )
                    times = [r[0] for r in await cursor.fetchall()]
            if not held:
                yield Batch(0, busy=True)
                return
            deleted = len(times)
            yield Batch(deleted, more=deleted >= limit)
            if deleted < limit:
                return
            after = max(after, *times)


class RetentionMetrics:
    """Declared once per registry (a service's purger and any other purge share them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.purged = Counter(
            "opsmesh_retention_purged_rows",
            "Rows deleted by retention purges",
            ["table"],
            registry=registry,
        )
        self.dropped_partitions = Counter(
            "opsmesh_retention_dropped_partitions",
            "Whole partitions dropped by retention",
            ["table"],
            registry=registry,
        )
        self.failures = Counter(
            "opsmesh_retention_purge_failures",
            "Purge runs that failed (retried at the next run)",
            ["table"],
            registry=registry,
        )
        self.loops = periodic_metrics(registry)
        self.last_purge = Gauge(
            "opsmesh_retention_last_purge_timestamp_seconds",
            "When each table's purge last ran to its end (nothing older than its cutoff left)",
            ["table"],
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class PurgeReport:
    table: str
    rows: int
    batches: int
    stopped: PurgeStop
    cutoff: float


class Purger:
    """Runs a service's purge jobs, one table after another, every ``interval_s``.

    A run gives each table at most ``max_batches`` batches, so one table's backlog does
    not hold the others back; when a table had more, the next run starts at once."""

    def __init__(
        self,
        jobs: Sequence[PurgeJob],
        *,
        clock: Clock,
        metrics: RetentionMetrics,
        interval_s: float,
        batch_rows: int = 1_000,
        max_batches: int = 100,
    ) -> None:
        if batch_rows < 1 or max_batches < 1:
            raise ValueError("batch_rows and max_batches must be at least 1")
        self.jobs = list(jobs)
        self._clock = clock
        self._metrics = metrics
        for job in self.jobs:  # exported from the start (0), so rates have a beginning
            metrics.purged.labels(job.table)
            metrics.failures.labels(job.table)
        self._interval_s = interval_s
        self._batch_rows = batch_rows
        self._max_batches = max_batches

    async def run_once(self, stop: asyncio.Event | None = None) -> list[PurgeReport]:
        reports = []
        for job in self.jobs:
            if stop is not None and stop.is_set():
                break
            reports.append(await self._purge(job, stop))
        return reports

    async def _purge(self, job: PurgeJob, stop: asyncio.Event | None) -> PurgeReport:
        cutoff = self._clock.now() - job.retention_s
        rows = batches = 0
        stopped = PurgeStop.DONE
        try:
            async with contextlib.aclosing(job.batches(cutoff, self._batch_rows)) as found:
                async for batch in found:
                    if batch.busy:
                        stopped = PurgeStop.BUSY
                        break
                    rows += batch.deleted
                    batches += 1
                    self._metrics.purged.labels(job.table).inc(batch.deleted)
                    if not batch.more:
                        break
                    if stop is not None and stop.is_set():
                        stopped = PurgeStop.STOPPED
                        break
                    if batches >= self._max_batches:
                        stopped = PurgeStop.BATCH_LIMIT
                        break
        except Exception:
            stopped = PurgeStop.FAILED
            self._metrics.failures.labels(job.table).inc()
            log.exception("retention purge failed; retrying next run", table=job.table)
        if stopped is PurgeStop.DONE:
            self._metrics.last_purge.labels(job.table).set(self._clock.now())
        report = PurgeReport(job.table, rows, batches, stopped, cutoff)
        # Quiet runs (nothing old, or another replica at it) are debug: every replica
        # runs every table every interval.
        quiet = not rows and stopped in (PurgeStop.DONE, PurgeStop.BUSY, PurgeStop.FAILED)
        (log.debug if quiet else log.info)(
            "retention purge",
            table=job.table,
            rows=rows,
            batches=batches,
            stopped=stopped.value,
            older_than=dt.datetime.fromtimestamp(cutoff, dt.UTC).isoformat(),
        )
        return report

    async def run(self, stop: asyncio.Event) -> None:
        """The worker: the first run one interval after start (a restart loop does not
        purge on every start), then every interval; at once again while a table has a
        backlog. A failing run is logged and retried; nothing here stops the service."""

        async def purge() -> NextRun | None:
            reports = await self.run_once(stop)
            behind = any(r.stopped is PurgeStop.BATCH_LIMIT for r in reports)
            return NextRun(0.0) if behind else None

        await Periodic(
            "retention_purge", purge, self._interval_s, self._metrics.loops, FirstRun.AFTER_INTERVAL
        ).run(stop)
