"""Findings (N+1, regressions, plan problems), plans and index recommendations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool


@dataclass(frozen=True, slots=True)
class Finding:
    id: str  # identity of the pattern: repeats add occurrences, not rows
    kind: str  # core enum values: n_plus_one, p95_regression, plan problem kinds
    fingerprint: str
    database: str
    application: str | None
    title: str
    evidence: dict[str, Any]
    seen_at: float


_UPSERT_FINDING = """
INSERT INTO query_analyzer.findings AS f
    (id, kind, fingerprint, database, application, title, evidence, occurrences,
     first_seen, last_seen)
VALUES (%s, %s, %s, %s, %s, %s, %s, 1, to_timestamp(%s), to_timestamp(%s))
ON CONFLICT (id) DO UPDATE SET
    occurrences = f.occurrences + 1,
    evidence = EXCLUDED.evidence,
    title = EXCLUDED.title,
    last_seen = GREATEST(f.last_seen, EXCLUDED.last_seen)
"""

_UPSERT_PLAN = """
INSERT INTO query_analyzer.plans (fingerprint, database, source, plan, problems, captured_at)
VALUES (%s, %s, %s, %s, %s, to_timestamp(%s))
ON CONFLICT (fingerprint, database, source) DO UPDATE SET
    plan = EXCLUDED.plan, problems = EXCLUDED.problems, captured_at = EXCLUDED.captured_at
"""

_UPSERT_RECOMMENDATION = """
INSERT INTO query_analyzer.recommendations AS r
    (fingerprint, database, reason, validated, table_name, columns, ddl, cost_before,
     cost_after, time_saved_ms, evidence, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s))
ON CONFLICT (fingerprint, database) DO UPDATE SET
    reason = EXCLUDED.reason, validated = EXCLUDED.validated,
    table_name = EXCLUDED.table_name, columns = EXCLUDED.columns, ddl = EXCLUDED.ddl,
    cost_before = EXCLUDED.cost_before, cost_after = EXCLUDED.cost_after,
    time_saved_ms = EXCLUDED.time_saved_ms, evidence = EXCLUDED.evidence,
    updated_at = EXCLUDED.updated_at,
    status = CASE WHEN r.ddl IS DISTINCT FROM EXCLUDED.ddl THEN 'open' ELSE r.status END
"""


@dataclass(frozen=True, slots=True)
class Recommendation:
    fingerprint: str
    database: str
    reason: str
    validated: bool
    table: str | None
    columns: tuple[str, ...] | None
    ddl: str | None
    cost_before: float | None
    cost_after: float | None
    time_saved_ms: float | None
    evidence: dict[str, Any]


class FindingStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def add(self, cur: AsyncCursor[Any], findings: Sequence[Finding]) -> None:
        rows = [
            (
                f.id,
                f.kind,
                f.fingerprint,
                f.database,
                f.application,
                f.title,
                Jsonb(f.evidence),
                f.seen_at,
                f.seen_at,
            )
            for f in sorted(findings, key=lambda f: f.id)
        ]
        if rows:
            await cur.executemany(_UPSERT_FINDING, rows)

    async def save_plan(
        self,
        cur: AsyncCursor[Any],
        *,
        fingerprint: str,
        database: str,
        source: str,
        plan: Any,
        problems: list[dict[str, Any]],
        at: float,
    ) -> None:
        await cur.execute(
            _UPSERT_PLAN, (fingerprint, database, source, Jsonb(plan), Jsonb(problems), at)
        )

    async def save_recommendation(self, rec: Recommendation, at: float) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                _UPSERT_RECOMMENDATION,
                (
                    rec.fingerprint,
                    rec.database,
                    rec.reason,
                    rec.validated,
                    rec.table,
                    list(rec.columns) if rec.columns else None,
                    rec.ddl,
                    rec.cost_before,
                    rec.cost_after,
                    rec.time_saved_ms,
                    Jsonb(rec.evidence),
                    at,
                ),
            )

    async def set_status(self, fingerprint: str, database: str, status: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE query_analyzer.recommendations SET status = %s"
                " WHERE fingerprint = %s AND database = %s",
                (status, fingerprint, database),
            )

    async def findings(
        self, *, limit: int, kind: str | None = None, database: str | None = None
    ) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT id, kind, fingerprint, database, application, title, evidence,"
                " occurrences, extract(epoch FROM first_seen)::float8 AS first_seen,"
                " extract(epoch FROM last_seen)::float8 AS last_seen"
                " FROM query_analyzer.findings"
                " WHERE (%s::text IS NULL OR kind = %s) AND (%s::text IS NULL OR database = %s)"
                " ORDER BY last_seen DESC, id LIMIT %s",
                (kind, kind, database, database, limit),
            )
            return list(await cur.fetchall())

    async def recommendations(
        self, *, limit: int, database: str | None = None, actionable: bool = False
    ) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT fingerprint, database, reason, validated, table_name, columns, ddl,"
                " cost_before, cost_after, time_saved_ms, evidence, status,"
                " extract(epoch FROM updated_at)::float8 AS updated_at"
                " FROM query_analyzer.recommendations"
                " WHERE (%s::text IS NULL OR database = %s)"
                " AND (NOT %s OR ddl IS NOT NULL)"
                " ORDER BY time_saved_ms DESC NULLS LAST, fingerprint LIMIT %s",
                (database, database, actionable, limit),
            )
            return list(await cur.fetchall())

    async def plans(self, fingerprint: str) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT database, source, plan, problems,"
                " extract(epoch FROM captured_at)::float8 AS captured_at"
                " FROM query_analyzer.plans WHERE fingerprint = %s ORDER BY database, source",
                (fingerprint,),
            )
            return list(await cur.fetchall())
