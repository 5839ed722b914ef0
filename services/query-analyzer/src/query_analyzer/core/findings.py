"""Findings and the signals they become for alert-engine (pure constructors)."""

from __future__ import annotations

import enum

from opsmesh.catalogue import QUERY_INDEX_ADVISED, QUERY_N_PLUS_ONE, QUERY_P95_REGRESSION
from opsmesh.events.signals import SignalObserved
from query_analyzer.core.candidates import IndexCandidate
from query_analyzer.core.nplusone import NPlusOne
from query_analyzer.core.plans import PlanProblem
from query_analyzer.core.regression import RegressionAssessment


class FindingKind(enum.StrEnum):
    N_PLUS_ONE = "n_plus_one"
    P95_REGRESSION = "p95_regression"
    PLAN_PROBLEM = "plan_problem"


# Index advice is stored as a recommendation, not a finding; its signal says so here.
INDEX_ADVICE = "index_advised"


def n_plus_one_id(database: str, found: NPlusOne) -> str:
    return f"{FindingKind.N_PLUS_ONE}:{database}:{found.key}"


def regression_id(database: str, fingerprint: str) -> str:
    return f"{FindingKind.P95_REGRESSION}:{database}:{fingerprint}"


def plan_problem_id(database: str, fingerprint: str, problem: PlanProblem) -> str:
    return f"{FindingKind.PLAN_PROBLEM}:{problem.kind}:{database}:{fingerprint}"


def index_advice_id(database: str, fingerprint: str, candidate: IndexCandidate) -> str:
    return f"{INDEX_ADVICE}:{database}:{fingerprint}:{candidate.label}"


def n_plus_one_signal(
    found: NPlusOne, *, database: str, application: str, observed_at: float
) -> SignalObserved:
    return QUERY_N_PLUS_ONE.observe(
        subject=n_plus_one_id(database, found),
        labels={
            "database": database,
            "application": application,
            "fingerprint": found.repeated_fingerprint,
            "finding": FindingKind.N_PLUS_ONE.value,
        },
        value=float(found.repeats),
        stats={"repeats": float(found.repeats), "total_ms": found.total_ms},
        observed_at=observed_at,
        detail=(
            f"N+1: {found.repeats} repeated queries ({found.total_ms:.0f} ms) under one parent"
            f" span in trace {found.trace_id}: {found.repeated_display[:500]}"
        ),
    )


def regression_signal(
    assessment: RegressionAssessment,
    *,
    database: str,
    fingerprint: str,
    display: str,
    window_start: float,
    window_end: float,
    observed_at: float,
) -> SignalObserved:
    return QUERY_P95_REGRESSION.observe(
        subject=regression_id(database, fingerprint),
        labels={
            "database": database,
            "fingerprint": fingerprint,
            "finding": FindingKind.P95_REGRESSION.value,
        },
        value=assessment.ratio or 0.0,
        stats={
            "p95_now_ms": assessment.p95_now or 0.0,
            "p95_baseline_ms": assessment.p95_baseline or 0.0,
            "calls_now": float(assessment.calls_now),
            "calls_baseline": float(assessment.calls_baseline),
        },
        window_start=window_start,
        window_end=window_end,
        observed_at=observed_at,
        detail=(
            f"p95 {assessment.p95_now or 0:.1f} ms vs baseline {assessment.p95_baseline or 0:.1f}"
            f" ms: {display[:500]}"
        ),
    )


def index_advice_signal(
    candidate: IndexCandidate,
    *,
    database: str,
    fingerprint: str,
    cost_before: float,
    cost_after: float,
    ddl: str,
    observed_at: float,
) -> SignalObserved:
    """An index the planner, given it as a hypothetical index, says would help."""
    savings = 1 - cost_after / cost_before if cost_before > 0 else 0.0
    return QUERY_INDEX_ADVISED.observe(
        subject=index_advice_id(database, fingerprint, candidate),
        labels={
            "database": database,
            "fingerprint": fingerprint,
            "table": candidate.table,
            "columns": ",".join(candidate.columns),
            "finding": INDEX_ADVICE,
        },
        value=savings,
        stats={"cost_before": cost_before, "cost_after": cost_after},
        observed_at=observed_at,
        detail=f"{ddl} (planned cost {cost_before:.0f} -> {cost_after:.0f})",
    )
