"""Per-fingerprint totals and per-window statistics (with sketches), merged once per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from opsmesh.logging import get_logger
from query_analyzer.core.aggregate import QueryAggregate
from query_analyzer.core.sketch import Sketch, SketchFormatError

log = get_logger(__name__)

_MERGE_TOTALS = """
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

_LOCK_WINDOWS = """
SELECT fingerprint, database, fingerprint_version, extract(epoch FROM window_start)::float8,
       sketch::text
FROM query_analyzer.query_windows
WHERE (fingerprint, database, fingerprint_version, window_start) IN (
    SELECT f, d, v, to_timestamp(w)
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[]) AS k(f, d, v, w))
FOR UPDATE
"""

_UPSERT_WINDOW = """
INSERT INTO query_analyzer.query_windows AS w
    (fingerprint, database, fingerprint_version, window_start, calls, total_ms, min_ms, max_ms,
     rows, sketch)
VALUES (%s, %s, %s, to_timestamp(%s), %s, %s, %s, %s, %s, %s)
ON CONFLICT (fingerprint, database, fingerprint_version, window_start) DO UPDATE SET
    calls = w.calls + EXCLUDED.calls,
    total_ms = w.total_ms + EXCLUDED.total_ms,
    min_ms = LEAST(w.min_ms, EXCLUDED.min_ms),
    max_ms = GREATEST(w.max_ms, EXCLUDED.max_ms),
    rows = w.rows + EXCLUDED.rows,
    sketch = EXCLUDED.sketch
"""

# Buckets are cut from each series' newest one back, so a fingerprint seen last week
# still shows its last buckets; the primary key (fingerprint first) finds the windows.
_WINDOWS = """
WITH newest AS (
    SELECT fingerprint, database, fingerprint_version,
           floor(extract(epoch FROM max(window_start))::float8 / %(step)s) * %(step)s AS last
    FROM query_analyzer.query_windows
    WHERE fingerprint = ANY(%(fingerprints)s::text[])
      AND (%(database)s::text IS NULL OR database = %(database)s)
      AND window_start >= to_timestamp(%(since)s)
    GROUP BY fingerprint, database, fingerprint_version)
SELECT w.fingerprint, w.database, w.fingerprint_version,
       floor(extract(epoch FROM w.window_start)::float8 / %(step)s) * %(step)s AS start,
       sum(w.calls)::bigint AS calls, sum(w.total_ms) AS total_ms, min(w.min_ms) AS min_ms,
       max(w.max_ms) AS max_ms, sum(w.rows)::bigint AS rows, jsonb_agg(w.sketch) AS sketches
FROM query_analyzer.query_windows w
JOIN newest n USING (fingerprint, database, fingerprint_version)
WHERE w.window_start >= to_timestamp(
    greatest(%(since)s, n.last - (%(buckets)s - 1) * %(step)s))
GROUP BY w.fingerprint, w.database, w.fingerprint_version, start
ORDER BY w.fingerprint, w.database, w.fingerprint_version, start
"""

WindowKey = tuple[str, str, str, float]
_SKETCH = Sketch.to_json_bytes  # Jsonb's dumps: msgspec, not json.dumps of to_json()


def _fold_totals(aggregates: Sequence[QueryAggregate]) -> list[QueryAggregate]:
    totals: dict[tuple[str, str, str], QueryAggregate] = {}
    for a in aggregates:
        key = (a.fingerprint.value, a.database, a.fingerprint.version)
        t = totals.get(key)
        if t is None:
            totals[key] = QueryAggregate(
                a.fingerprint,
                a.database,
                a.window_start,
                a.calls,
                a.total_ms,
                a.min_ms,
                a.max_ms,
                a.rows,
                a.last_seen,
                a.sample_sql,
            )
            continue
        t.calls += a.calls
        t.total_ms += a.total_ms
        t.min_ms = min(t.min_ms, a.min_ms)
        if a.max_ms >= t.max_ms:
            t.max_ms, t.sample_sql = a.max_ms, a.sample_sql
        t.rows += a.rows
        t.last_seen = max(t.last_seen, a.last_seen)
    return list(totals.values())


class QueryStats:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def merge(self, cur: AsyncCursor[Any], aggregates: Sequence[QueryAggregate]) -> None:
        """Add a batch's aggregates (inside the caller's transaction)."""
        if not aggregates:
            return
        totals = sorted(_fold_totals(aggregates), key=lambda a: (a.fingerprint.value, a.database))
        await cur.executemany(
            _MERGE_TOTALS,
            [
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
                for a in totals
            ],
        )
        # Sketches merge in Python: lock the windows' rows, add, write back.
        ordered = sorted(
            aggregates, key=lambda a: (a.fingerprint.value, a.database, a.window_start)
        )
        keys = [
            (a.fingerprint.value, a.database, a.fingerprint.version, a.window_start)
            for a in ordered
        ]
        await cur.execute(
            _LOCK_WINDOWS,
            (
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [k[3] for k in keys],
            ),
        )
        stored: dict[WindowKey, Sketch] = {}
        for r in await cur.fetchall():
            # An unreadable stored sketch is replaced by this batch's: its window keeps its
            # totals, only the percentiles restart, and the batch is not stuck on it.
            if (sketch := _readable(r[4], (r[0], r[1], r[2]))) is not None:
                stored[(r[0], r[1], r[2], r[3])] = sketch
        rows = []
        for key, a in zip(keys, ordered, strict=True):
            # The stored sketch was read for this merge alone: add the batch's to it.
            sketch = stored.get(key)
            if sketch is None:
                sketch = a.sketch
            else:
                sketch.merge(a.sketch)
            rows.append(
                (*key, a.calls, a.total_ms, a.min_ms, a.max_ms, a.rows, Jsonb(sketch, _SKETCH))
            )
        await cur.executemany(_UPSERT_WINDOW, rows)

    async def top(
        self, limit: int, *, database: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Top fingerprints by total time; with ``since``, over the windows from then on
        (percentiles from the merged sketches), otherwise over all time."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT s.fingerprint, s.database, s.fingerprint_kind, s.fingerprint_version,"
                " s.display_sql, s.sample_sql, w.calls, w.total_ms,"
                " w.total_ms / w.calls AS mean_ms,"
                " w.min_ms, w.max_ms, w.rows, w.sketches,"
                " extract(epoch FROM s.last_seen)::float8 AS last_seen"
                " FROM query_analyzer.query_stats s"
                " JOIN LATERAL (SELECT sum(calls)::bigint AS calls, sum(total_ms) AS total_ms,"
                "   min(min_ms) AS min_ms, max(max_ms) AS max_ms, sum(rows)::bigint AS rows,"
                "   jsonb_agg(sketch) AS sketches FROM query_analyzer.query_windows q"
                "   WHERE q.fingerprint = s.fingerprint AND q.database = s.database"
                "   AND q.fingerprint_version = s.fingerprint_version"
                "   AND q.window_start >= to_timestamp(%s)) w ON w.calls > 0"
                " WHERE (%s::text IS NULL OR s.database = %s)"
                " ORDER BY w.total_ms DESC LIMIT %s",
                (since or 0.0, database, database, limit),
            )
            return [_with_percentiles(row) for row in await cur.fetchall()]

    async def one(self, fingerprint: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """A fingerprint's statistics per database (with percentiles)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT s.fingerprint, s.database, s.fingerprint_kind, s.fingerprint_version,"
                " s.display_sql, s.sample_sql, s.calls, s.total_ms,"
                " s.total_ms / s.calls AS mean_ms,"
                " s.min_ms, s.max_ms, s.rows,"
                " (SELECT jsonb_agg(sketch) FROM query_analyzer.query_windows q"
                "   WHERE q.fingerprint = s.fingerprint AND q.database = s.database"
                "   AND q.fingerprint_version = s.fingerprint_version"
                "   AND q.window_start >= to_timestamp(%s)) AS sketches,"
                " extract(epoch FROM s.last_seen)::float8 AS last_seen"
                " FROM query_analyzer.query_stats s WHERE s.fingerprint = %s",
                (since or 0.0, fingerprint),
            )
            return [_with_percentiles(row) for row in await cur.fetchall()]

    async def windows(
        self,
        fingerprints: Sequence[str],
        *,
        step_s: float,
        buckets: int,
        database: str | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Each named fingerprint's statistics over time, per database and version: its
        windows summed into buckets of ``step_s`` (aligned to multiples of it since the
        epoch; a window counts where it starts), the last ``buckets`` buckets up to its
        newest window, oldest first, with percentiles from the buckets' merged sketches.
        A bucket without calls is absent."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                _WINDOWS,
                {
                    "fingerprints": list(fingerprints),
                    "database": database,
                    "since": since or 0.0,
                    "step": float(step_s),
                    "buckets": buckets,
                },
            )
            rows = []
            for row in await cur.fetchall():
                row["step_s"] = float(step_s)
                row["mean_ms"] = row["total_ms"] / row["calls"]
                rows.append(_with_percentiles(row))
            return rows

    async def window_sketches(self, start: float, end: float) -> dict[tuple[str, str, str], Sketch]:
        """Per fingerprint key: the merged sketch of windows in [start, end)."""
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT fingerprint, database, fingerprint_version, sketch"
                " FROM query_analyzer.query_windows"
                " WHERE window_start >= to_timestamp(%s) AND window_start < to_timestamp(%s)",
                (start, end),
            )
            merged: dict[tuple[str, str, str], Sketch] = {}
            for fp, db, version, data in await cur.fetchall():
                if (sketch := _readable(data, (fp, db, version))) is not None:
                    merged.setdefault((fp, db, version), Sketch()).merge(sketch)
            return merged


def _with_percentiles(row: dict[str, Any]) -> dict[str, Any]:
    sketch = Sketch()
    for data in row.pop("sketches", None) or []:
        if (readable := _readable(data, (row["fingerprint"], row["database"]))) is not None:
            sketch.merge(readable)
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        row[name] = sketch.quantile(q)
    return row


def _readable(data: Any, where: tuple[Any, ...]) -> Sketch | None:
    """A stored sketch, or None (logged) when the row holds one this code cannot read: one
    damaged row must neither fail a read API nor stall the statistics consumer."""
    try:
        return Sketch.from_json(data)
    except SketchFormatError as exc:
        log.warning("unreadable sketch skipped", key=list(where), reason=str(exc))
        return None
