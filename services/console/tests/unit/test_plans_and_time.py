"""EXPLAIN plans as trees with their costly nodes marked; ages and instants."""

from __future__ import annotations

import pytest

from console.core.plans import PlanError, plan_tree
from console.core.timefmt import age, instant

PLAN = [
    {
        "Plan": {
            "Node Type": "Hash Join",
            "Total Cost": 1000.0,
            "Plan Rows": 50,
            "Plans": [
                {
                    "Node Type": "Seq Scan",
                    "Relation Name": "orders",
                    "Total Cost": 900.0,
                    "Plan Rows": 300000,
                    "Actual Rows": 10,
                    "Actual Loops": 3,
                    "Filter": "(customer_id = 42)",
                },
                {
                    "Node Type": "Index Scan",
                    "Relation Name": "customers",
                    "Index Name": "customers_pkey",
                    "Total Cost": 8.0,
                },
            ],
        }
    }
]


def test_a_plan_becomes_a_tree_with_own_costs_and_the_costly_node_marked() -> None:
    root = plan_tree(PLAN)
    assert root.node_type == "Hash Join"
    assert root.own_cost == pytest.approx(92.0)
    assert not root.costly
    scan, index = root.children
    assert (scan.relation, scan.costly, scan.actual_rows) == ("orders", True, 30.0)
    assert scan.filter == "(customer_id = 42)"
    assert (index.index, index.costly) == ("customers_pkey", False)


def test_a_bare_node_is_a_plan_too_and_garbage_is_refused() -> None:
    assert plan_tree({"Node Type": "Result", "Total Cost": 0.01}).children == ()
    for bad in ([], "text", {"Plan": {"no": "type"}}):
        with pytest.raises(PlanError):
            plan_tree(bad)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-5, "0s"), (45, "45s"), (192, "3m12s"), (3600, "1h"), (7500, "2h5m"), (356_400, "4d3h")],
)
def test_ages_show_the_two_largest_units(seconds: float, shown: str) -> None:
    assert age(seconds) == shown


def test_instants_are_utc_to_the_second() -> None:
    assert instant(1_800_000_000.4) == "2027-01-15 08:00:00Z"
