"""Closed windows into PostgreSQL, one ``executemany`` per batch."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.rollup.windows import ClosedWindow

_UPSERT = """
INSERT INTO metrics_ingest.rollups
    (series, name, labels, kind, window_s, window_start, window_end,
     count, sum, min, max, last, increase)
VALUES (%s, %s, %s, %s, %s, to_timestamp(%s), to_timestamp(%s), %s, %s, %s, %s, %s, %s)
ON CONFLICT (series, window_s, window_start) DO UPDATE SET
    count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max,
    last = EXCLUDED.last, increase = EXCLUDED.increase
"""


class RollupHistory:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def store(self, windows: Sequence[ClosedWindow]) -> None:
        if not windows:
            return
        rows = [
            (
                w.series,
                w.name,
                Jsonb(dict(w.labels)),
                w.kind.value,
                w.end - w.start,
                w.start,
                w.end,
                w.count,
                w.total,
                w.minimum,
                w.maximum,
                w.last,
                w.increase,
            )
            for w in windows
        ]
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(_UPSERT, rows)
