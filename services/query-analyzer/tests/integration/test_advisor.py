"""Index advice against real PostgreSQL 15 + HypoPG on a realistic schema."""

from __future__ import annotations

import pytest

from query_analyzer.core.advice import AdviceReason
from query_analyzer.target.advisor import advise
from query_analyzer.target.explain import ExplainError, TargetDatabase, explain_on

from .conftest import Target

pytestmark = pytest.mark.integration


async def test_a_selective_filter_on_a_large_table_gets_a_validated_index(target: Target) -> None:
    advice = await advise(
        TargetDatabase(target.dsn), "SELECT * FROM orders WHERE customer_id = 4242"
    )
    assert advice.reason is AdviceReason.RECOMMENDED, advice.evidence
    assert advice.validated
    assert advice.candidate is not None
    assert advice.candidate.label == "orders (customer_id)"
    assert advice.savings is not None
    assert advice.savings >= 0.5
    assert (
        advice.ddl == "CREATE INDEX CONCURRENTLY qa_orders_customer_id_idx ON orders (customer_id)"
    )


async def test_filter_plus_sort_prefers_a_two_column_index(target: Target) -> None:
    advice = await advise(
        TargetDatabase(target.dsn),
        "SELECT * FROM orders WHERE status = 'paid' ORDER BY created_at DESC LIMIT 20",
    )
    assert advice.reason is AdviceReason.RECOMMENDED, advice.evidence
    assert advice.candidate is not None
    assert advice.candidate.columns in {("status", "created_at"), ("created_at",)}


async def test_bind_parameters_are_planned_as_a_generic_plan(target: Target) -> None:
    advice = await advise(
        TargetDatabase(target.dsn), "SELECT id FROM orders WHERE customer_id = $1"
    )
    assert advice.reason is AdviceReason.RECOMMENDED, advice.evidence
    assert advice.candidate is not None
    assert advice.candidate.columns == ("customer_id",)


async def test_a_small_table_gets_no_advice(target: Target) -> None:
    advice = await advise(TargetDatabase(target.dsn), "SELECT * FROM countries WHERE name = 'x'")
    assert advice.reason is AdviceReason.LOW_INITIAL_COST
    assert advice.ddl is None


async def test_a_low_selectivity_filter_gets_no_advice(target: Target) -> None:
    advice = await advise(TargetDatabase(target.dsn), "SELECT * FROM orders WHERE status = 'paid'")
    assert advice.reason is AdviceReason.INSUFFICIENT_SAVINGS, advice.evidence
    assert advice.ddl is None


async def test_an_already_indexed_column_gets_no_advice(target: Target) -> None:
    advice = await advise(
        TargetDatabase(target.dsn), "SELECT * FROM customers WHERE email > 'user5'"
    )
    assert advice.reason is AdviceReason.ALREADY_INDEXED, advice.evidence
    assert advice.evidence["covered_by_existing"] == {"customers (email)": ["email"]}


async def test_without_hypopg_the_advice_is_marked_unvalidated(target: Target) -> None:
    advice = await advise(
        TargetDatabase(target.no_hypopg_dsn), "SELECT * FROM orders WHERE customer_id = 4242"
    )
    assert advice.reason is AdviceReason.UNVALIDATED
    assert not advice.validated
    assert advice.ddl is not None
    assert "(customer_id)" in advice.ddl


async def test_explain_is_read_only_and_analyze_needs_enabling(target: Target) -> None:
    db = TargetDatabase(target.dsn)
    async with db.session() as conn:
        with pytest.raises(ExplainError, match="read-only"):
            await explain_on(conn, "INSERT INTO countries VALUES (999, 'x')", analyze=True)
    with pytest.raises(ExplainError, match="disabled"):
        await db.explain("SELECT 1", analyze=True)
    analyzing = TargetDatabase(target.dsn, analyze_enabled=True)
    plan = await analyzing.explain("DELETE FROM countries WHERE id = 1", analyze=True)
    assert plan[0]["Plan"]["Operation"] == "Delete"
    rows = await analyzing.explain("SELECT * FROM countries WHERE id = 1", analyze=True)
    assert rows[0]["Plan"]["Actual Rows"] == 1  # the DELETE was rolled back


async def test_the_statement_timeout_bounds_explain_analyze(target: Target) -> None:
    db = TargetDatabase(target.dsn, statement_timeout_ms=50, analyze_enabled=True)
    with pytest.raises(ExplainError, match="timeout"):
        await db.explain("SELECT pg_sleep(1)", analyze=True)
