"""An EXPLAIN (FORMAT JSON) plan as a tree to render, its costly nodes marked.

A node's own cost is its total cost less its children's (the planner's figures are
cumulative); a node is costly when its own cost is at least ``COSTLY_SHARE`` of the
whole plan's, which is where an engineer should look first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

COSTLY_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class PlanNode:
    node_type: str
    relation: str | None
    index: str | None
    total_cost: float
    own_cost: float
    plan_rows: float | None
    actual_rows: float | None  # per loop times loops, when the plan was ANALYZEd
    filter: str | None
    costly: bool
    children: tuple[PlanNode, ...]


class PlanError(ValueError):
    pass


def _root(explained: Any) -> Mapping[str, Any]:
    if isinstance(explained, list):
        if not explained:
            raise PlanError("empty EXPLAIN output")
        explained = explained[0]
    if not isinstance(explained, Mapping):
        raise PlanError("EXPLAIN output is neither a list nor an object")
    node = explained.get("Plan", explained)
    if not isinstance(node, Mapping) or "Node Type" not in node:
        raise PlanError("EXPLAIN output has no plan node")
    return node


def _number(node: Mapping[str, Any], key: str) -> float | None:
    value = node.get(key)
    return float(value) if isinstance(value, int | float) else None


def plan_tree(explained: Any) -> PlanNode:
    root = _root(explained)
    whole = _number(root, "Total Cost") or 0.0
    return _node(root, whole, depth=0)


def _node(node: Mapping[str, Any], whole: float, depth: int) -> PlanNode:
    if depth > 100:  # PostgreSQL plans are far shallower; a deeper one is not a plan
        raise PlanError("plan nested deeper than 100 nodes")
    raw_children = [c for c in node.get("Plans", ()) or () if isinstance(c, Mapping)]
    children = tuple(_node(c, whole, depth + 1) for c in raw_children)
    total = _number(node, "Total Cost") or 0.0
    own = max(0.0, total - sum(c.total_cost for c in children))
    rows = _number(node, "Actual Rows")
    loops = _number(node, "Actual Loops")
    return PlanNode(
        node_type=str(node.get("Node Type", "?")),
        relation=_text(node.get("Relation Name")),
        index=_text(node.get("Index Name")),
        total_cost=total,
        own_cost=own,
        plan_rows=_number(node, "Plan Rows"),
        actual_rows=rows * loops if rows is not None and loops is not None else rows,
        filter=_text(node.get("Filter") or node.get("Index Cond")),
        costly=whole > 0 and own >= COSTLY_SHARE * whole,
        children=children,
    )


def _text(value: object) -> str | None:
    return str(value) if value is not None else None
