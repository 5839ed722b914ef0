"""Closed windows into PostgreSQL, one COPY and one upsert per batch, into day partitions.

Partitions for the days a batch touches are created on first use (and ahead of time by
``maintain``), so a write never fails for want of one; windows of days past retention
are not written, since their partition is gone or about to be dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.rollup.closed import ClosedWindow
from metrics_ingest.rollup.retention import (
    PartitionPlan,
    RetentionPolicy,
    bounds,
    day_of,
    is_retained,
    parse_partition_name,
    partition_name,
    plan,
)

# Rows arrive by COPY (text we build in one pass) into a per-connection staging table,
# then one upsert: psycopg's per-field ``write_row`` and ``Jsonb`` dumping cost more than
# the database's side of the write. Times travel as epoch seconds and become timestamps in
# the upsert.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS rollups_incoming (
    series text, name text, labels jsonb, kind text, window_s float8, start_s float8,
    end_s float8, count bigint, sum float8, min float8, max float8, last float8,
    increase float8, quantiles jsonb
) ON COMMIT DELETE ROWS
"""
_COPY = "COPY rollups_incoming FROM STDIN"
_UPSERT = """
INSERT INTO metrics_ingest.rollups
    (series, name, labels, kind, window_s, window_start, window_end,
     count, sum, min, max, last, increase, quantiles)
SELECT series, name, labels, kind, window_s, to_timestamp(start_s), to_timestamp(end_s),
       count, sum, min, max, last, increase, quantiles
FROM rollups_incoming
ON CONFLICT (series, window_s, window_start) DO UPDATE SET
    count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max,
    last = EXCLUDED.last, increase = EXCLUDED.increase, quantiles = EXCLUDED.quantiles
"""
_PARTITIONS = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = 'metrics_ingest' AND p.relname = 'rollups'
"""


_IDENTITY_CACHE_MAX = 200_000
# Partition DDL of all replicas one at a time: a DROP that resolved a partition another
# replica was dropping failed with PostgreSQL's "could not find tuple for parent of
# relation" (XX000) once the other committed; serialized, it finds the table gone and
# IF EXISTS makes it a no-op (and CREATE IF NOT EXISTS likewise). Held to commit; the
# maintenance steps' lock_timeout bounds the wait for it too.
_PARTITION_DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('metrics_ingest.rollups partitions'))"

_MAINTENANCE_LOCK_TIMEOUT = "2s"
_json = msgspec.json.Encoder().encode
# COPY's text format: backslash, tab, newline and carriage return are escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(text: str) -> str:
    """``text`` as one field of PostgreSQL's COPY text format."""
    return text.translate(_COPY_ESCAPES)


class History(Protocol):
    async def store(self, windows: Sequence[ClosedWindow], now: float) -> int:
        """Make ``windows`` durable; returns how many were skipped as past retention."""
        ...


class RollupHistory:
    def __init__(self, pool: AsyncConnectionPool, policy: RetentionPolicy | None = None) -> None:
        self._pool = pool
        self._policy = policy or RetentionPolicy()
        self._known_days: set[dt.date] = set()
        # Per series: its series, name, labels and kind fields of a COPY row.
        self._identity: dict[str, str] = {}

    async def store(self, windows: Sequence[ClosedWindow], now: float) -> int:
        # Windows of a batch share a few starts: each start's day is worked out once.
        retained: dict[float, bool] = {}
        kept = []
        for w in windows:
            keep = retained.get(w.start)
            if keep is None:
                keep = retained[w.start] = is_retained(w.start, now, self._policy)
            if keep:
                kept.append(w)
        if not kept:
            return len(windows)
        days = {day_of(start) for start, keep in retained.items() if keep} - self._known_days
        if days:
            await self._create(days)
        # One row per window key: a re-emitted window replaces the earlier one.
        latest = {(w.series, w.end - w.start, w.start): w for w in kept}
        data = self._copy_text(latest.values())
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                await cur.execute(_STAGING)
                async with cur.copy(_COPY) as copy:
                    await copy.write(data)
                await cur.execute(_UPSERT)
        except psycopg.errors.CheckViolation:
            self._known_days.clear()  # a partition went away under us: re-create on retry
            raise
        return len(windows) - len(kept)

    def _copy_text(self, windows: Iterable[ClosedWindow]) -> bytes:
        """COPY text rows; each series' identity fields are escaped and encoded once."""
        identity_of = self._identity
        if len(identity_of) > _IDENTITY_CACHE_MAX:
            identity_of.clear()
        lines = []
        for w in windows:
            identity = identity_of.get(w.series)
            if identity is None:
                identity = identity_of[w.series] = "\t".join(
                    (
                        copy_field(w.series),
                        copy_field(w.name),
                        copy_field(_json(w.labels).decode()),
                        w.kind.value,
                    )
                )
            quantiles = copy_field(_json(w.quantiles).decode()) if w.quantiles else "{}"
            lines.append(
                f"{identity}\t{w.end - w.start!r}\t{w.start!r}\t{w.end!r}\t{w.count}\t"
                f"{w.total!r}\t{w.minimum!r}\t{w.maximum!r}\t{w.last!r}\t{w.increase!r}\t"
                f"{quantiles}\n"
            )
        return "".join(lines).encode()

    async def partitions(self) -> list[dt.date]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_PARTITIONS)
            names = [row[0] for row in await cursor.fetchall()]
        return sorted(d for d in map(parse_partition_name, names) if d is not None)

    async def maintain(self, now: float) -> PartitionPlan:
        """The purge job: create the coming days' partitions, drop expired ones whole.
        Returns what was done. Adding or dropping a partition locks the whole table
        (ACCESS EXCLUSIVE), and every read and write of the history would queue behind a
        step waiting for that lock: each step is its own transaction, gives up after
        ``_MAINTENANCE_LOCK_TIMEOUT`` while a reader holds the table, and is left for the
        next run (a write creates the partition it needs itself). Replicas may run it
        together: every step is idempotent."""
        todo = plan(now, await self.partitions(), self._policy)
        created = await self._create(set(todo.create), lock_timeout=_MAINTENANCE_LOCK_TIMEOUT)
        dropped = []
        async with self._pool.connection() as conn:
            for day in todo.drop:
                try:
                    async with conn.transaction():
                        await conn.execute(
                            "SELECT set_config('lock_timeout', %s, true)",
                            (_MAINTENANCE_LOCK_TIMEOUT,),
                        )
                        await conn.execute(_PARTITION_DDL_LOCK)
                        await conn.execute(
                            sql.SQL("DROP TABLE IF EXISTS metrics_ingest.{}").format(
                                sql.Identifier(partition_name(day))
                            )
                        )
                except psycopg.errors.LockNotAvailable:
                    continue
                self._known_days.discard(day)
                dropped.append(day)
        return PartitionPlan(tuple(created), tuple(dropped))

    async def _create(
        self, days: set[dt.date], *, lock_timeout: str | None = None
    ) -> list[dt.date]:
        """Create the partitions of ``days``; returns those created. With ``lock_timeout``,
        a partition that could not get its lock in time is skipped."""
        created = []
        async with self._pool.connection() as conn:
            for day in sorted(days):
                start, end = bounds(day)
                try:
                    async with conn.transaction():
                        if lock_timeout is not None:
                            await conn.execute(
                                "SELECT set_config('lock_timeout', %s, true)", (lock_timeout,)
                            )
                        await conn.execute(_PARTITION_DDL_LOCK)
                        await conn.execute(
                            sql.SQL(
                                "CREATE TABLE IF NOT EXISTS metrics_ingest.{} PARTITION OF "
                                "metrics_ingest.rollups FOR VALUES FROM ({}) TO ({})"
                            ).format(
                                sql.Identifier(partition_name(day)),
                                sql.Literal(start),
                                sql.Literal(end),
                            )
                        )
                except psycopg.errors.LockNotAvailable:
                    if lock_timeout is None:
                        raise
                    continue
                except (psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation):
                    # IF NOT EXISTS does not cover a replica creating it at the same moment.
                    self._known_days.add(day)
                    continue
                self._known_days.add(day)
                created.append(day)
        return created
