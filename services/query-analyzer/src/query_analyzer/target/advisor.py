"""Index advice validated with HypoPG hypothetical indexes on the target database.

For one sample statement: plan it, list candidate indexes from its parse tree, drop
those an existing btree index already serves, then plan it again with each candidate
as a hypothetical index (``hypopg_create_index``; visible only to this connection and
gone with it) and let ``core.advice.choose`` pick. Without HypoPG the candidates are
returned unvalidated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

from query_analyzer.core import candidates as cand
from query_analyzer.core.advice import (
    AdviceReason,
    AdviceRules,
    Measured,
    choose,
    create_index_ddl,
)
from query_analyzer.core.plans import index_names, total_cost
from query_analyzer.target.explain import ExplainError, TargetDatabase, explain_on


@dataclass(slots=True)
class Advice:
    reason: AdviceReason
    sample_sql: str
    cost_before: float | None = None
    candidate: cand.IndexCandidate | None = None
    cost_after: float | None = None
    validated: bool = False
    ddl: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def savings(self) -> float | None:
        if self.cost_before and self.cost_after is not None:
            return 1 - self.cost_after / self.cost_before
        return None


async def has_hypopg(conn: AsyncConnection[Any]) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'")
    return await cur.fetchone() is not None


async def existing_indexes(conn: AsyncConnection[Any], table: str) -> list[tuple[str, ...]]:
    """Valid btree indexes on ``table`` as column tuples (expression columns end the tuple)."""
    cur = await conn.execute(
        """
        SELECT array_agg(a.attname ORDER BY k.ord)
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
        CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = to_regclass(%s) AND i.indisvalid
        GROUP BY i.indexrelid
        """,
        (table,),
    )
    return [tuple(row[0]) for row in await cur.fetchall()]


async def table_columns(conn: AsyncConnection[Any], tables: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table in tables:
        cur = await conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
            " AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
        columns = {row[0] for row in await cur.fetchall()}
        if columns:
            found[table] = columns
    return found


async def _measure(
    conn: AsyncConnection[Any], statement: str, candidate: cand.IndexCandidate
) -> Measured:
    await conn.execute("SELECT hypopg_reset()")
    ddl = create_index_ddl(candidate, concurrently=False)
    cur = await conn.execute("SELECT indexname FROM hypopg_create_index(%s)", (ddl,))
    row = await cur.fetchone()
    name = str(row[0]) if row else ""
    plan = await explain_on(conn, statement)
    return Measured(candidate, total_cost(plan), name in index_names(plan))


async def advise(
    target: TargetDatabase, statement: str, rules: AdviceRules | None = None
) -> Advice:
    rules = rules or AdviceRules()
    async with target.session() as conn:
        try:
            plan = await explain_on(conn, statement)
        except ExplainError as exc:
            return Advice(AdviceReason.NOT_EXPLAINABLE, statement, evidence={"error": str(exc)})
        cost_before = total_cost(plan)
        advice = Advice(AdviceReason.NO_CANDIDATES, statement, cost_before=cost_before)
        advice.evidence["plan_before"] = plan
        if cost_before < rules.min_initial_cost:
            advice.reason = AdviceReason.LOW_INITIAL_COST
            advice.evidence["min_initial_cost"] = rules.min_initial_cost
            return advice
        tables = cand.relations(statement)
        uses = cand.resolve(cand.column_uses(statement), await table_columns(conn, tables))
        existing = {t: await existing_indexes(conn, t) for t in {u.table for u in uses if u.table}}
        covered: dict[str, list[str]] = {}
        fresh: list[cand.IndexCandidate] = []
        for candidate in cand.candidates(uses):
            by = cand.covered_by(candidate, existing.get(candidate.table, []))
            if by is None:
                fresh.append(candidate)
            else:
                covered[candidate.label] = list(by)
        advice.evidence["covered_by_existing"] = covered
        if not fresh:
            advice.reason = AdviceReason.ALREADY_INDEXED if covered else AdviceReason.NO_CANDIDATES
            return advice
        if not await has_hypopg(conn):
            # Without the planner's word, offer the first filter column of each table.
            first = next((c for c in fresh if len(c.columns) == 1), fresh[0])
            advice.reason = AdviceReason.UNVALIDATED
            advice.candidate = first
            advice.ddl = create_index_ddl(first)
            advice.evidence["candidates"] = [c.label for c in fresh]
            return advice
        measured = [await _measure(conn, statement, c) for c in fresh]
        await conn.execute("SELECT hypopg_reset()")
        choice = choose(cost_before, measured, rules)
        advice.validated = True
        advice.reason = choice.reason
        advice.candidate = choice.candidate
        advice.cost_after = choice.cost_after
        advice.evidence["measured"] = [
            {"index": m.candidate.label, "cost": m.cost, "used": m.used} for m in measured
        ]
        advice.evidence["min_savings"] = rules.min_savings
        if choice.reason is AdviceReason.RECOMMENDED and choice.candidate is not None:
            advice.ddl = create_index_ddl(choice.candidate)
        return advice
