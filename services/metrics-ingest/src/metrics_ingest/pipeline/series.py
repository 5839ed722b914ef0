"""Reading rollup history back: one series query, re-aggregated into step buckets.

Sums are added up as ``numeric`` (PostgreSQL's float8 ``sum`` raises on overflow, a 500
for two saturated windows) and saturated like the windows themselves (``rollup.closed``);
rows written before saturation may hold infinities, which are saturated here too.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.rollup.closed import saturate
from metrics_ingest.rollup.query import SeriesQuery

MAX_ROWS = 200_000

_SELECT = """
SELECT series, labels,
       extract(epoch FROM date_bin(make_interval(secs => %(step)s), window_start,
                                   to_timestamp(0)))::float8 AS t,
       sum(count)::bigint, sum(sum::numeric), min(min), max(max),
       (array_agg(last ORDER BY window_start DESC))[1], sum(increase::numeric), min(kind)
FROM metrics_ingest.rollups
WHERE name = %(name)s AND window_s = %(window_s)s
  AND window_start >= to_timestamp(%(start)s) AND window_start < to_timestamp(%(end)s)
  AND labels @> %(equal)s {not_equal}
GROUP BY series, labels, t
ORDER BY series, t
LIMIT %(limit)s
"""


async def query_series(pool: AsyncConnectionPool, query: SeriesQuery) -> list[dict[str, Any]]:
    params: dict[str, Any] = {
        "step": query.step,
        "name": query.name,
        "window_s": query.window_s,
        "start": query.start,
        "end": query.end,
        "equal": Jsonb(dict(query.equal)),
        "limit": MAX_ROWS,
    }
    clauses = []
    for i, (label, value) in enumerate(sorted(query.not_equal.items())):
        params[f"ne{i}"] = Jsonb({label: value})
        clauses.append(f"AND NOT labels @> %(ne{i})s")
    sql = _SELECT.format(not_equal=" ".join(clauses))
    async with pool.connection() as conn:
        cursor = await conn.execute(sql, params)
        rows = await cursor.fetchall()
    out: dict[str, dict[str, Any]] = {}
    for series, labels, t, count, exact_total, low, high, last, exact_increase, kind in rows:
        entry = out.setdefault(series, {"series": series, "labels": labels, "points": []})
        total = saturate(float(exact_total))
        point = {
            "t": t,
            "count": count,
            "sum": total,
            "min": saturate(low),
            "max": saturate(high),
            "last": saturate(last),
            "mean": saturate(float(exact_total / count)) if count else None,
        }
        if kind == "counter":
            increase = saturate(float(exact_increase))
            point["increase"] = increase
            point["rate"] = saturate(increase / query.step)
        entry["points"].append(point)
    return list(out.values())
