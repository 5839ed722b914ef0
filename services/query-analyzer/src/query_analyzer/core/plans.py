"""Reading EXPLAIN (FORMAT JSON) plans for the problems worth a human's time.

Works on plans with and without ANALYZE: the estimate-based readings (a sequential
scan with a filter on a large table) need only the planner's figures; the rest need the
``Actual ...`` fields. ``Actual Rows`` and ``Rows Removed by Filter`` are per loop, so
they are multiplied by ``Actual Loops`` (PostgreSQL prints them per loop).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class PlanProblemKind(enum.StrEnum):
    SEQ_SCAN_WITH_FILTER = "seq_scan_with_filter"
    ROWS_REMOVED_BY_FILTER = "rows_removed_by_filter"
    BAD_ROW_ESTIMATE = "bad_row_estimate"
    SORT_SPILLED_TO_DISK = "sort_spilled_to_disk"
    NESTED_LOOP_MANY_LOOPS = "nested_loop_many_loops"


@dataclass(frozen=True, slots=True)
class PlanThresholds:
    large_table_rows: float = 10_000  # rows the planner expects a scan to read
    removed_rows: float = 10_000
    removed_fraction: float = 0.5  # of the rows the scan read
    estimate_factor: float = 10.0  # actual vs planned, either way
    estimate_min_rows: float = 100
    nested_loop_loops: float = 1_000


@dataclass(frozen=True, slots=True)
class PlanProblem:
    kind: PlanProblemKind
    node_type: str
    relation: str | None
    detail: str
    magnitude: float  # what the threshold was compared with (rows, loops, factor, kB)


def root_plan(explained: Any) -> dict[str, Any]:
    """The top plan node from EXPLAIN JSON output (``[{"Plan": ...}]``) or a bare node."""
    if isinstance(explained, list):
        if not explained:
            raise ValueError("empty EXPLAIN output")
        explained = explained[0]
    if not isinstance(explained, dict):
        raise ValueError(f"EXPLAIN output must be a list or an object, got {type(explained)}")
    node = explained.get("Plan", explained)
    if not isinstance(node, dict) or "Node Type" not in node:
        raise ValueError("EXPLAIN output has no plan node")
    return node


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()) or ():
        if isinstance(child, dict):
            yield from nodes(child)


def total_cost(explained: Any) -> float:
    return float(root_plan(explained).get("Total Cost", 0.0))


def index_names(explained: Any) -> set[str]:
    return {str(n["Index Name"]) for n in nodes(root_plan(explained)) if "Index Name" in n}


def _num(node: dict[str, Any], field: str) -> float | None:
    value = node.get(field)
    return float(value) if isinstance(value, int | float) else None


def relations(explained: Any) -> set[str]:
    return {str(n["Relation Name"]) for n in nodes(root_plan(explained)) if "Relation Name" in n}


def read_plan(
    explained: Any,
    thresholds: PlanThresholds = PlanThresholds(),
    table_rows: dict[str, float] | None = None,
) -> list[PlanProblem]:
    """``table_rows`` (the catalog's row estimates) lets a plan without ANALYZE show how
    much a sequential scan reads; the plan itself only says how many rows it returns."""
    problems: list[PlanProblem] = []
    for node in nodes(root_plan(explained)):
        problems.extend(_read_node(node, thresholds, table_rows or {}))
    return problems


def _read_node(
    node: dict[str, Any], t: PlanThresholds, table_rows: dict[str, float]
) -> Iterator[PlanProblem]:
    node_type = str(node.get("Node Type", "?"))
    relation = node.get("Relation Name")
    loops = _num(node, "Actual Loops") or 1.0
    actual = _num(node, "Actual Rows")
    planned = _num(node, "Plan Rows")
    removed = _num(node, "Rows Removed by Filter")
    if node_type == "Seq Scan" and "Filter" in node:
        # The planner's rows for a parallel scan are per worker; what it reads is the
        # rows it returns plus those it expects to remove. Without ANALYZE we only know
        # the returned estimate, so the table's size comes from the removed rows if known.
        read = (actual or 0.0) * loops + (removed or 0.0) * loops
        if removed is None:
            read = max(read, table_rows.get(str(relation), planned or 0.0))
        if read >= t.large_table_rows:
            yield PlanProblem(
                PlanProblemKind.SEQ_SCAN_WITH_FILTER,
                node_type,
                relation,
                f"sequential scan of {relation} with filter {node['Filter']}"
                f" reads ~{read:.0f} rows",
                read,
            )
    if removed is not None and actual is not None:
        removed_total = removed * loops
        read_total = removed_total + actual * loops
        if removed_total >= t.removed_rows and removed_total >= t.removed_fraction * read_total:
            yield PlanProblem(
                PlanProblemKind.ROWS_REMOVED_BY_FILTER,
                node_type,
                relation,
                f"{removed_total:.0f} of {read_total:.0f} rows read were removed by the filter"
                f" ({removed:.0f} per loop x {loops:.0f} loops)",
                removed_total,
            )
    if actual is not None and planned is not None:
        high, low = max(actual, planned), max(min(actual, planned), 1.0)
        if high >= t.estimate_min_rows and high / low >= t.estimate_factor:
            yield PlanProblem(
                PlanProblemKind.BAD_ROW_ESTIMATE,
                node_type,
                relation,
                f"planner expected {planned:.0f} rows, got {actual:.0f} per loop"
                f" ({high / low:.0f}x off); consider ANALYZE or extended statistics",
                high / low,
            )
    if node_type in ("Sort", "Incremental Sort") and (
        node.get("Sort Space Type") == "Disk" or "external" in str(node.get("Sort Method", ""))
    ):
        used = _num(node, "Sort Space Used") or 0.0
        yield PlanProblem(
            PlanProblemKind.SORT_SPILLED_TO_DISK,
            node_type,
            relation,
            f"sort spilled {used:.0f} kB to disk ({node.get('Sort Method')}); raise work_mem"
            " or sort fewer rows",
            used,
        )
    if node_type == "Nested Loop":
        children = [c for c in node.get("Plans", ()) or () if isinstance(c, dict)]
        inner_loops = _num(children[1], "Actual Loops") if len(children) > 1 else None
        if inner_loops is None and children:
            # Without ANALYZE: the outer side's estimated rows drive the inner loops.
            outer = _num(children[0], "Plan Rows")
            inner_loops = outer * loops if outer is not None else None
        if inner_loops is not None and inner_loops >= t.nested_loop_loops:
            yield PlanProblem(
                PlanProblemKind.NESTED_LOOP_MANY_LOOPS,
                node_type,
                relation,
                f"nested loop runs its inner side {inner_loops:.0f} times",
                inner_loops,
            )
