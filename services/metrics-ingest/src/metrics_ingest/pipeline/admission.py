"""Group-wide admission of new series under the series limits, in PostgreSQL.

Each replica admits a new series against what it holds, then asks here once per batch
that brought new series. Admission runs under one transaction-scoped advisory lock, so
two replicas racing for the last slots (of a metric, or of the group) cannot both take
them. The limits: series per metric name (counted in ``series_admitted``), series in all
and distinct metric names (``series_totals``, advanced here and recounted whenever rows
go away or come back outside admission).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.rollup.cardinality import SeriesKey, SeriesLimits, SeriesRefusal

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('metrics_ingest.series_admitted', 0))"
_COUNTS = """
SELECT name, count(*) FROM metrics_ingest.series_admitted
WHERE name = ANY(%(names)s::text[]) GROUP BY name
"""
_KNOWN = """
SELECT a.name, a.series FROM metrics_ingest.series_admitted a
JOIN unnest(%(names)s::text[], %(series)s::text[]) AS c(name, series)
  ON a.name = c.name AND a.series = c.series
"""
_UPSERT = """
INSERT INTO metrics_ingest.series_admitted (name, series, last_seen)
SELECT name, series, to_timestamp(%(now)s)
FROM unnest(%(names)s::text[], %(series)s::text[]) AS c(name, series)
ON CONFLICT (name, series) DO UPDATE SET last_seen = EXCLUDED.last_seen
"""
_DELETE = """
DELETE FROM metrics_ingest.series_admitted a
USING unnest(%(names)s::text[], %(series)s::text[]) AS c(name, series)
WHERE a.name = c.name AND a.series = c.series
"""
_PURGE = "DELETE FROM metrics_ingest.series_admitted WHERE last_seen < to_timestamp(%s)"
_TOTALS = "SELECT series, names FROM metrics_ingest.series_totals"
_SET_TOTALS = "UPDATE metrics_ingest.series_totals SET series = %s, names = %s"
_RECOUNT = """
UPDATE metrics_ingest.series_totals SET
    series = (SELECT count(*) FROM metrics_ingest.series_admitted),
    names = (SELECT count(DISTINCT name) FROM metrics_ingest.series_admitted)
"""

Refused = list[tuple[SeriesKey, SeriesRefusal]]


class SeriesAdmission(Protocol):
    async def admit(self, candidates: Sequence[SeriesKey], now: float) -> Refused:
        """Register ``candidates`` where the limits allow; returns the refused ones, each
        with the limit that refused it."""
        ...

    async def touch(self, live: Sequence[SeriesKey], now: float) -> None:
        """Mark series as still held (and re-register any a purge took)."""
        ...

    async def release(self, gone: Sequence[SeriesKey]) -> None: ...


class PgSeriesAdmission:
    def __init__(self, pool: AsyncConnectionPool, limits: SeriesLimits) -> None:
        self._pool = pool
        self._limits = limits

    async def admit(self, candidates: Sequence[SeriesKey], now: float) -> Refused:
        unique = list(dict.fromkeys(candidates))
        if not unique:
            return []
        limits = self._limits
        names = sorted({name for name, _ in unique})
        refused: Refused = []
        admitted: list[SeriesKey] = []
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_LOCK)
            cursor = await conn.execute(_COUNTS, {"names": names})
            counts: dict[str, int] = dict(await cursor.fetchall())
            cursor = await conn.execute(_KNOWN, _arrays(unique))
            known = {(name, one) for name, one in await cursor.fetchall()}
            series_total, names_total = await _totals(conn)
            added = 0
            for key in unique:
                name = key[0]
                held = counts.get(name, 0)
                if key in known:
                    admitted.append(key)
                elif limits.per_metric and held >= limits.per_metric:
                    refused.append((key, SeriesRefusal.PER_METRIC))
                elif limits.series and series_total >= limits.series:
                    refused.append((key, SeriesRefusal.SERIES))
                elif limits.metric_names and not held and names_total >= limits.metric_names:
                    refused.append((key, SeriesRefusal.METRIC_NAMES))
                else:
                    counts[name] = held + 1
                    series_total += 1
                    names_total += 0 if held else 1
                    added += 1
                    admitted.append(key)
            if admitted:
                await conn.execute(_UPSERT, {**_arrays(admitted), "now": now})
            if added:
                await conn.execute(_SET_TOTALS, (series_total, names_total))
        return refused

    async def touch(self, live: Sequence[SeriesKey], now: float) -> None:
        if live:
            # Not under the lock (every held series, every minute): only a purged series
            # coming back changes the totals, and the recount after settles them.
            async with self._pool.connection() as conn:
                await conn.execute(_UPSERT, {**_arrays(live), "now": now})
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(_LOCK)
                await conn.execute(_RECOUNT)

    async def release(self, gone: Sequence[SeriesKey]) -> None:
        if gone:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(_LOCK)
                await conn.execute(_DELETE, _arrays(gone))
                await conn.execute(_RECOUNT)

    async def purge(self, before: float) -> int:
        """Forget series nobody has touched since ``before`` (their replica went away)."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_LOCK)
            cursor = await conn.execute(_PURGE, (before,))
            await conn.execute(_RECOUNT)
            return cursor.rowcount

    async def totals(self) -> tuple[int, int]:
        """(series, distinct metric names) admitted group-wide."""
        async with self._pool.connection() as conn:
            return await _totals(conn)


async def _totals(conn: AsyncConnection) -> tuple[int, int]:
    cursor = await conn.execute(_TOTALS)
    row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _arrays(keys: Sequence[SeriesKey]) -> dict[str, list[str]]:
    return {"names": [name for name, _ in keys], "series": [one for _, one in keys]}
