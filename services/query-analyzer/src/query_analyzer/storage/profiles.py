"""Profiles per route and per function (``query_analyzer.route_profiles`` and
``profile_functions``): merged by the profile stage, read by ``GET /api/v1/profiles``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from query_analyzer.core.profiles import FunctionTotals, RouteTotals

_MERGE_ROUTES = """
INSERT INTO query_analyzer.route_profiles AS r
    (service, route, profiles, slow_profiles, samples, total_ms, max_ms, slowest_trace_id,
     last_seen, memory_profiles, memory_peak_total_bytes, memory_peak_max_bytes,
     memory_net_total_bytes)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s), %s, %s, %s, %s)
ON CONFLICT (service, route) DO UPDATE SET
    profiles = r.profiles + EXCLUDED.profiles,
    slow_profiles = r.slow_profiles + EXCLUDED.slow_profiles,
    samples = r.samples + EXCLUDED.samples,
    total_ms = r.total_ms + EXCLUDED.total_ms,
    slowest_trace_id = CASE WHEN EXCLUDED.max_ms >= r.max_ms
                            THEN EXCLUDED.slowest_trace_id ELSE r.slowest_trace_id END,
    max_ms = GREATEST(r.max_ms, EXCLUDED.max_ms),
    last_seen = GREATEST(r.last_seen, EXCLUDED.last_seen),
    memory_profiles = r.memory_profiles + EXCLUDED.memory_profiles,
    memory_peak_total_bytes = r.memory_peak_total_bytes + EXCLUDED.memory_peak_total_bytes,
    memory_peak_max_bytes = GREATEST(r.memory_peak_max_bytes, EXCLUDED.memory_peak_max_bytes),
    memory_net_total_bytes = r.memory_net_total_bytes + EXCLUDED.memory_net_total_bytes
"""

_MERGE_FUNCTIONS = """
INSERT INTO query_analyzer.profile_functions AS f
    (service, route, function, file, line, profiles, self_samples, total_samples, last_seen)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s))
ON CONFLICT (service, route, function, file, line) DO UPDATE SET
    profiles = f.profiles + EXCLUDED.profiles,
    self_samples = f.self_samples + EXCLUDED.self_samples,
    total_samples = f.total_samples + EXCLUDED.total_samples,
    last_seen = GREATEST(f.last_seen, EXCLUDED.last_seen)
"""

_ROUTES = """
SELECT service, route, profiles, slow_profiles, samples, total_ms,
       total_ms / profiles AS mean_ms, max_ms, slowest_trace_id,
       extract(epoch FROM last_seen)::float8 AS last_seen, memory_profiles,
       CASE WHEN memory_profiles > 0
            THEN memory_peak_total_bytes / memory_profiles END AS memory_peak_mean_bytes,
       CASE WHEN memory_profiles > 0 THEN memory_peak_max_bytes END AS memory_peak_max_bytes,
       CASE WHEN memory_profiles > 0
            THEN memory_net_total_bytes / memory_profiles END AS memory_net_mean_bytes
FROM query_analyzer.route_profiles
WHERE (%s::text IS NULL OR service = %s)
ORDER BY total_ms DESC, service, route
LIMIT %s
"""

# Per route, its functions by the samples that caught them running (where the time went),
# then by the samples with them on the stack.
_FUNCTIONS = """
SELECT service, route, function, file, line, profiles, self_samples, total_samples
FROM (
    SELECT f.*, row_number() OVER (
        PARTITION BY f.service, f.route
        ORDER BY f.self_samples DESC, f.total_samples DESC, f.function) AS rank
    FROM query_analyzer.profile_functions f
    JOIN unnest(%s::text[], %s::text[]) AS k(service, route)
      ON f.service = k.service AND f.route = k.route
) ranked
WHERE rank <= %s
ORDER BY service, route, rank
"""


class ProfileStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def merge(
        self,
        cur: AsyncCursor[Any],
        routes: Sequence[RouteTotals],
        functions: Sequence[FunctionTotals],
    ) -> None:
        """Add a batch's totals (inside the caller's transaction), in ``fold``'s order."""
        if routes:
            await cur.executemany(
                _MERGE_ROUTES,
                [
                    (
                        r.service,
                        r.route,
                        r.profiles,
                        r.slow_profiles,
                        r.samples,
                        r.total_ms,
                        r.max_ms,
                        r.slowest_trace_id,
                        r.last_seen,
                        r.memory_profiles,
                        r.memory_peak_total,
                        r.memory_peak_max,
                        r.memory_net_total,
                    )
                    for r in routes
                ],
            )
        if functions:
            await cur.executemany(
                _MERGE_FUNCTIONS,
                [
                    (
                        f.service,
                        f.route,
                        f.function,
                        f.file,
                        f.line,
                        f.profiles,
                        f.self_samples,
                        f.total_samples,
                        f.last_seen,
                    )
                    for f in functions
                ],
            )

    async def routes(
        self, *, service: str | None, limit: int, functions: int
    ) -> list[dict[str, Any]]:
        """Routes by total profiled time, each with its top ``functions``; a function's
        ``self_share`` is its share of the route's samples spent running in it. The memory
        figures are over the ``memory_profiles`` that carried them (null when none did)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_ROUTES, (service, service, limit))
            routes = await cur.fetchall()
            if not routes:
                return []
            await cur.execute(
                _FUNCTIONS,
                ([r["service"] for r in routes], [r["route"] for r in routes], functions),
            )
            rows = await cur.fetchall()
        by_route: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            by_route.setdefault((row.pop("service"), row.pop("route")), []).append(row)
        for route in routes:
            samples = route["samples"] or 1
            top = by_route.get((route["service"], route["route"]), [])
            for f in top:
                f["self_share"] = f["self_samples"] / samples
                f["total_share"] = f["total_samples"] / samples
            route["functions"] = top
        return routes
