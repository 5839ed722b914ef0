"""Group-wide admission of new series under the per-metric limit, in PostgreSQL.

Each replica admits a new series against what it holds, then asks here once per batch
that brought new series. Admission for a metric name runs under a transaction-scoped
advisory lock on that name (taken in name order, so two replicas never deadlock), so two
replicas racing for a metric's last slots cannot both take them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from psycopg_pool import AsyncConnectionPool

from metrics_ingest.rollup.cardinality import SeriesKey

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('metrics_ingest.series/' || %s, 0))"
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


class SeriesAdmission(Protocol):
    async def admit(self, candidates: Sequence[SeriesKey], now: float) -> list[SeriesKey]:
        """Register ``candidates`` where the limit allows; returns the refused ones."""
        ...

    async def touch(self, live: Sequence[SeriesKey], now: float) -> None:
        """Mark series as still held (and re-register any a purge took)."""
        ...

    async def release(self, gone: Sequence[SeriesKey]) -> None: ...


class PgSeriesAdmission:
    def __init__(self, pool: AsyncConnectionPool, max_per_metric: int) -> None:
        self._pool = pool
        self._max = max_per_metric

    async def admit(self, candidates: Sequence[SeriesKey], now: float) -> list[SeriesKey]:
        unique = list(dict.fromkeys(candidates))
        if not unique:
            return []
        names = sorted({name for name, _ in unique})
        admitted: list[SeriesKey] = []
        refused: list[SeriesKey] = []
        async with self._pool.connection() as conn, conn.transaction():
            for name in names:
                await conn.execute(_LOCK, (name,))
            cursor = await conn.execute(_COUNTS, {"names": names})
            counts: dict[str, int] = dict(await cursor.fetchall())
            cursor = await conn.execute(_KNOWN, _arrays(unique))
            known = {(name, one) for name, one in await cursor.fetchall()}
            for key in unique:
                name = key[0]
                if key in known:
                    admitted.append(key)
                elif counts.get(name, 0) < self._max:
                    counts[name] = counts.get(name, 0) + 1
                    admitted.append(key)
                else:
                    refused.append(key)
            if admitted:
                await conn.execute(_UPSERT, {**_arrays(admitted), "now": now})
        return refused

    async def touch(self, live: Sequence[SeriesKey], now: float) -> None:
        if live:
            async with self._pool.connection() as conn:
                await conn.execute(_UPSERT, {**_arrays(live), "now": now})

    async def release(self, gone: Sequence[SeriesKey]) -> None:
        if gone:
            async with self._pool.connection() as conn:
                await conn.execute(_DELETE, _arrays(gone))

    async def purge(self, before: float) -> int:
        """Forget series nobody has touched since ``before`` (their replica went away)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_PURGE, (before,))
            return cursor.rowcount


def _arrays(keys: Sequence[SeriesKey]) -> dict[str, list[str]]:
    return {"names": [name for name, _ in keys], "series": [one for _, one in keys]}
