"""Plan reading on EXPLAIN JSON shaped like PostgreSQL 15's output."""

from __future__ import annotations

from typing import Any

import pytest

from query_analyzer.core.plans import PlanProblemKind, index_names, read_plan, total_cost


def _kinds(plan: Any) -> set[PlanProblemKind]:
    return {p.kind for p in read_plan(plan)}


def test_parallel_seq_scan_with_filter_counts_rows_removed_times_loops() -> None:
    plan = [
        {
            "Plan": {
                "Node Type": "Gather",
                "Total Cost": 8713.2,
                "Plan Rows": 10,
                "Actual Rows": 10,
                "Actual Loops": 1,
                "Plans": [
                    {
                        "Node Type": "Seq Scan",
                        "Relation Name": "orders",
                        "Parallel Aware": True,
                        "Filter": "(user_id = 42)",
                        "Plan Rows": 4,
                        "Actual Rows": 3,
                        "Actual Loops": 3,
                        "Rows Removed by Filter": 166666,
                    }
                ],
            }
        }
    ]
    problems = read_plan(plan)
    assert {p.kind for p in problems} == {
        PlanProblemKind.SEQ_SCAN_WITH_FILTER,
        PlanProblemKind.ROWS_REMOVED_BY_FILTER,
    }
    removed = next(p for p in problems if p.kind is PlanProblemKind.ROWS_REMOVED_BY_FILTER)
    assert removed.magnitude == 166666 * 3
    assert removed.relation == "orders"
    assert total_cost(plan) == 8713.2


def test_estimate_only_seq_scan_on_a_small_table_is_fine() -> None:
    plan = {
        "Plan": {
            "Node Type": "Seq Scan",
            "Relation Name": "t",
            "Filter": "(a = 1)",
            "Plan Rows": 40,
            "Total Cost": 2.5,
        }
    }
    assert _kinds(plan) == set()


def test_bad_row_estimate_sort_spill_and_nested_loop() -> None:
    plan = [
        {
            "Plan": {
                "Node Type": "Sort",
                "Sort Method": "external merge",
                "Sort Space Used": 52000,
                "Sort Space Type": "Disk",
                "Plan Rows": 100,
                "Actual Rows": 100,
                "Actual Loops": 1,
                "Plans": [
                    {
                        "Node Type": "Nested Loop",
                        "Plan Rows": 50,
                        "Actual Rows": 90_000,
                        "Actual Loops": 1,
                        "Plans": [
                            {
                                "Node Type": "Seq Scan",
                                "Relation Name": "a",
                                "Plan Rows": 10,
                                "Actual Rows": 5000,
                                "Actual Loops": 1,
                            },
                            {
                                "Node Type": "Index Scan",
                                "Relation Name": "b",
                                "Index Name": "b_pkey",
                                "Plan Rows": 1,
                                "Actual Rows": 18,
                                "Actual Loops": 5000,
                            },
                        ],
                    }
                ],
            }
        }
    ]
    assert _kinds(plan) == {
        PlanProblemKind.SORT_SPILLED_TO_DISK,
        PlanProblemKind.BAD_ROW_ESTIMATE,
        PlanProblemKind.NESTED_LOOP_MANY_LOOPS,
    }
    assert index_names(plan) == {"b_pkey"}


def test_malformed_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="plan"):
        read_plan({"nope": 1})
    with pytest.raises(ValueError, match="empty"):
        read_plan([])


def test_catalog_row_counts_reveal_a_large_scan_without_analyze() -> None:
    plan = {
        "Plan": {
            "Node Type": "Seq Scan",
            "Relation Name": "events",
            "Filter": "(a = 1)",
            "Plan Rows": 6,
            "Total Cost": 5000,
        }
    }
    assert _kinds(plan) == set()
    [problem] = read_plan(plan, table_rows={"events": 300_000})
    assert problem.kind is PlanProblemKind.SEQ_SCAN_WITH_FILTER
    assert problem.magnitude == 300_000
