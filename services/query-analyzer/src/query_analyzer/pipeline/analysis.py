"""The periodic analysis: p95 regressions against their baseline, EXPLAIN of slow
fingerprints on the target database, and index advice. The service runs it on an
interval; ``opsmesh optimize-queries`` runs it once before printing the report.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from opsmesh.clock import Clock
from opsmesh.events.signals import SignalObserved
from opsmesh.logging import get_logger
from query_analyzer.core.advice import AdviceReason, AdviceRules
from query_analyzer.core.findings import (
    FindingKind,
    index_advice_signal,
    plan_problem_id,
    regression_id,
    regression_signal,
)
from query_analyzer.core.plans import PlanThresholds, read_plan
from query_analyzer.core.plans import relations as plan_relations
from query_analyzer.core.regression import RegressionRules, RegressionVerdict, assess
from query_analyzer.pipeline.signals import SignalSink
from query_analyzer.storage.findings import Finding, FindingStore, Recommendation
from query_analyzer.storage.stats import QueryStats
from query_analyzer.target.advisor import Advice, advise
from query_analyzer.target.explain import ExplainError, TargetDatabase

log = get_logger(__name__)


class AnalysisOutcome(enum.StrEnum):
    EXPLAINED = "explained"
    NOT_EXPLAINABLE = "not_explainable"


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    window_s: int = 60
    regression_now_windows: int = 5
    regression_baseline_windows: int = 60
    slow_mean_ms: float = 100.0
    top_n: int = 20
    lookback_s: float = 24 * 3600
    analyze: bool = False
    regression: RegressionRules = field(default_factory=RegressionRules)
    advice: AdviceRules = field(default_factory=AdviceRules)
    plan_thresholds: PlanThresholds = field(default_factory=PlanThresholds)


@dataclass(slots=True)
class AnalysisReport:
    regressions: list[dict[str, Any]] = field(default_factory=list)
    explained: dict[str, AnalysisOutcome] = field(default_factory=dict)
    recommendations: list[Recommendation] = field(default_factory=list)


class Analyzer:
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        signals: SignalSink,
        clock: Clock,
        config: AnalysisConfig,
        target: TargetDatabase | None,
        target_database: str | None,
    ) -> None:
        self._pool = pool
        self._stats = QueryStats(pool)
        self._findings = FindingStore(pool)
        self._signals = signals
        self._clock = clock
        self._config = config
        self._target = target
        # Queries are only planned on the database they ran on (by its event name).
        self._target_database = target_database

    async def run_once(self) -> AnalysisReport:
        report = AnalysisReport()
        await self.regressions(report)
        if self._target is not None:
            await self.explain_and_advise(report)
        return report

    async def regressions(self, report: AnalysisReport) -> None:
        c = self._config
        now = self._clock.now()
        # Only closed windows: the current one is still filling.
        end = now - now % c.window_s
        start_now = end - c.regression_now_windows * c.window_s
        start_base = start_now - c.regression_baseline_windows * c.window_s
        current = await self._stats.window_sketches(start_now, end)
        baseline = await self._stats.window_sketches(start_base, start_now)
        findings, signals = [], []
        for (fingerprint, database, _version), sketch in current.items():
            base = baseline.get((fingerprint, database, _version))
            if base is None:
                continue
            assessment = assess(sketch, base, c.regression)
            if assessment.verdict is not RegressionVerdict.REGRESSED:
                continue
            rows = await self._stats.one(fingerprint)
            display = next((r["display_sql"] for r in rows if r["database"] == database), "")
            evidence = {
                "p95_now_ms": assessment.p95_now,
                "p95_baseline_ms": assessment.p95_baseline,
                "calls_now": assessment.calls_now,
                "calls_baseline": assessment.calls_baseline,
                "window": [start_now, end],
                "baseline_window": [start_base, start_now],
            }
            report.regressions.append(
                {"fingerprint": fingerprint, "database": database, **evidence}
            )
            findings.append(
                Finding(
                    id=regression_id(database, fingerprint),
                    kind=FindingKind.P95_REGRESSION,
                    fingerprint=fingerprint,
                    database=database,
                    application=None,
                    title=f"p95 regressed {assessment.ratio or 0:.1f}x: {display[:200]}",
                    evidence=evidence,
                    seen_at=now,
                )
            )
            signals.append(
                regression_signal(
                    assessment,
                    database=database,
                    fingerprint=fingerprint,
                    display=display,
                    window_start=start_now,
                    window_end=end,
                    observed_at=now,
                )
            )
        if findings:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await self._findings.add(cur, findings)
            await self._signals.publish(signals)

    async def explain_and_advise(self, report: AnalysisReport) -> None:
        assert self._target is not None  # the caller checked
        c = self._config
        now = self._clock.now()
        top = await self._stats.top(
            c.top_n, database=self._target_database, since=now - c.lookback_s
        )
        advised: list[SignalObserved] = []
        for row in top:
            if row["mean_ms"] < c.slow_mean_ms:
                continue
            fingerprint, database, sample = row["fingerprint"], row["database"], row["sample_sql"]
            try:
                plan = await self._target.explain(sample, analyze=c.analyze)
            except ExplainError as exc:
                log.info("cannot explain", fingerprint=fingerprint, error=str(exc)[:200])
                report.explained[fingerprint] = AnalysisOutcome.NOT_EXPLAINABLE
                continue
            report.explained[fingerprint] = AnalysisOutcome.EXPLAINED
            table_rows = await self._target.table_rows(plan_relations(plan))
            problems = read_plan(plan, c.plan_thresholds, table_rows)
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await self._findings.save_plan(
                    cur,
                    fingerprint=fingerprint,
                    database=database,
                    source="explain",
                    plan=plan,
                    problems=[asdict(p) for p in problems],
                    at=now,
                )
                await self._findings.add(
                    cur,
                    [
                        Finding(
                            id=plan_problem_id(database, fingerprint, p),
                            kind=FindingKind.PLAN_PROBLEM,
                            fingerprint=fingerprint,
                            database=database,
                            application=None,
                            title=p.detail[:300],
                            evidence={**asdict(p), "source": "explain"},
                            seen_at=now,
                        )
                        for p in problems
                    ],
                )
            advice = await advise(self._target, sample, c.advice)
            savings = advice.savings
            evidence = dict(advice.evidence)
            evidence.pop("plan_before", None)  # stored with the plans already
            evidence.update(
                {"calls": row["calls"], "total_ms": row["total_ms"], "savings": savings}
            )
            rec = Recommendation(
                fingerprint=fingerprint,
                database=database,
                reason=advice.reason.value,
                validated=advice.validated,
                table=advice.candidate.table if advice.candidate else None,
                columns=advice.candidate.columns if advice.candidate else None,
                ddl=advice.ddl,
                cost_before=advice.cost_before,
                cost_after=advice.cost_after,
                # The planner's relative saving applied to the measured time: an estimate.
                time_saved_ms=row["total_ms"] * savings if savings and advice.ddl else None,
                evidence=evidence,
            )
            await self._findings.save_recommendation(rec, now)
            report.recommendations.append(rec)
            signal = _advice_signal(advice, database, fingerprint, now)
            if signal is not None:
                advised.append(signal)
        if advised:
            await self._signals.publish(advised)


def _advice_signal(
    advice: Advice, database: str, fingerprint: str, now: float
) -> SignalObserved | None:
    """Only advice the planner validated (HypoPG) is alertable: unvalidated candidates
    are guesses from the parse tree, listed in the report but not paged on."""
    if not (advice.validated and advice.reason is AdviceReason.RECOMMENDED):
        return None
    if advice.candidate is None or advice.cost_before is None or advice.cost_after is None:
        return None
    return index_advice_signal(
        advice.candidate,
        database=database,
        fingerprint=fingerprint,
        cost_before=advice.cost_before,
        cost_after=advice.cost_after,
        ddl=advice.ddl or "",
        observed_at=now,
    )
