"""Which candidate index to recommend, from planner costs measured with hypothetical indexes.

Dexter's rules (ankane/dexter ``indexer.rb``): skip statements whose plan is already
cheap; keep a single-column index only if it at least halves the cost; prefer a
two-column index only if it halves the best single column's cost again. Every outcome
has a named reason, so "why no index?" has an answer in the report and the API.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from query_analyzer.core.candidates import IndexCandidate


class AdviceReason(enum.StrEnum):
    RECOMMENDED = "recommended"
    UNVALIDATED = "unvalidated"  # no HypoPG on the target: candidates from the parse tree only
    LOW_INITIAL_COST = "low_initial_cost"
    ALREADY_INDEXED = "already_indexed"
    INSUFFICIENT_SAVINGS = "insufficient_savings"
    NO_CANDIDATES = "no_candidates"
    NOT_EXPLAINABLE = "not_explainable"


@dataclass(frozen=True, slots=True)
class AdviceRules:
    min_initial_cost: float = 100.0
    min_savings: float = 0.5  # fraction of the planner's cost an index must remove


@dataclass(frozen=True, slots=True)
class Measured:
    candidate: IndexCandidate
    cost: float
    used: bool  # the planner chose the hypothetical index


@dataclass(frozen=True, slots=True)
class Choice:
    reason: AdviceReason
    candidate: IndexCandidate | None
    cost_after: float | None

    def savings(self, cost_before: float) -> float | None:
        if self.cost_after is None or cost_before <= 0:
            return None
        return 1 - self.cost_after / cost_before


def choose(
    cost_before: float, measured: list[Measured], rules: AdviceRules = AdviceRules()
) -> Choice:
    useful = [m for m in measured if m.used]
    singles = sorted((m for m in useful if len(m.candidate.columns) == 1), key=lambda m: m.cost)
    pairs = sorted((m for m in useful if len(m.candidate.columns) > 1), key=lambda m: m.cost)
    bar = cost_before * (1 - rules.min_savings)
    best: Measured | None = singles[0] if singles and singles[0].cost <= bar else None
    if pairs and pairs[0].cost <= bar:
        reference = best.cost if best is not None else cost_before
        if pairs[0].cost <= reference * (1 - rules.min_savings):
            best = pairs[0]
    if best is None:
        cheapest = min(useful, key=lambda m: m.cost, default=None)
        return Choice(
            AdviceReason.INSUFFICIENT_SAVINGS,
            cheapest.candidate if cheapest else None,
            cheapest.cost if cheapest else None,
        )
    return Choice(AdviceReason.RECOMMENDED, best.candidate, best.cost)


_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quote_ident(name: str) -> str:
    if _PLAIN.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_relation(relation: str) -> str:
    return ".".join(quote_ident(part) for part in relation.split("."))


def index_name(candidate: IndexCandidate) -> str:
    table = candidate.table.split(".")[-1]
    name = f"qa_{table}_{'_'.join(candidate.columns)}_idx"
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:63]


def create_index_ddl(candidate: IndexCandidate, *, concurrently: bool = True) -> str:
    columns = ", ".join(quote_ident(c) for c in candidate.columns)
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f"CREATE INDEX {how}{quote_ident(index_name(candidate))}"
        f" ON {quote_relation(candidate.table)} ({columns})"
    )
