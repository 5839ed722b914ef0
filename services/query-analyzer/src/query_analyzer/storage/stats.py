"""Per-fingerprint totals, merged with one ``executemany`` per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from query_analyzer.core.aggregate import QueryAggregate

_MERGE = """
INSERT INTO query_analyzer.query_stats AS s
    (fingerprint, database, fingerprint_kind, fingerprint_version, display_sql, sample_sql,
     calls, total_ms, min_ms, max_ms, rows, last_seen)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s))
ON CONFLICT (fingerprint, database, fingerprint_version) DO UPDATE SET
    calls = s.calls + EXCLUDED.calls,
    total_ms = s.total_ms + EXCLUDED.total_ms,
    min_ms = LEAST(s.min_ms, EXCLUDED.min_ms),
    max_ms = GREATEST(s.max_ms, EXCLUDED.max_ms),
    sample_sql = CASE WHEN EXCLUDED.max_ms > s.max_ms
                      THEN EXCLUDED.sample_sql ELSE s.sample_sql END,
    rows = s.rows + EXCLUDED.rows,
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)
"""


class QueryStats:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def merge(self, cur: AsyncCursor[Any], aggregates: Sequence[QueryAggregate]) -> None:
        """Add a batch's totals (inside the caller's transaction)."""
        if not aggregates:
            return
        rows = [
            (
                a.fingerprint.value,
                a.database,
                a.fingerprint.kind.value,
                a.fingerprint.version,
                a.fingerprint.display,
                a.sample_sql,
                a.calls,
                a.total_ms,
                a.min_ms,
                a.max_ms,
                a.rows,
                a.last_seen,
            )
            for a in aggregates
        ]
        await cur.executemany(_MERGE, rows)

    async def top(self, limit: int) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT fingerprint, database, fingerprint_kind, display_sql, calls, total_ms,"
                " total_ms / calls AS mean_ms, min_ms, max_ms, rows,"
                " extract(epoch FROM last_seen)::float8 AS last_seen"
                " FROM query_analyzer.query_stats ORDER BY total_ms DESC LIMIT %s",
                (limit,),
            )
            return list(await cur.fetchall())
