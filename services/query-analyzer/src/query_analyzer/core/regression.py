"""Latency regressions: a fingerprint's p95 now against its own baseline."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from query_analyzer.core.sketch import Sketch


class RegressionVerdict(enum.StrEnum):
    REGRESSED = "regressed"
    STEADY = "steady"
    TOO_FEW_CALLS_NOW = "too_few_calls_now"
    NO_BASELINE = "no_baseline"


@dataclass(frozen=True, slots=True)
class RegressionRules:
    factor: float = 2.0  # p95 now >= factor x baseline p95
    min_increase_ms: float = 10.0  # ignore doubling from 1 ms to 2 ms
    min_calls: int = 20  # in each of now and baseline


@dataclass(frozen=True, slots=True)
class RegressionAssessment:
    verdict: RegressionVerdict
    p95_now: float | None
    p95_baseline: float | None
    calls_now: int
    calls_baseline: int

    @property
    def ratio(self) -> float | None:
        if not self.p95_now or not self.p95_baseline:
            return None
        return self.p95_now / self.p95_baseline


def assess(
    now: Sketch, baseline: Sketch, rules: RegressionRules = RegressionRules()
) -> RegressionAssessment:
    p95_now, p95_base = now.quantile(0.95), baseline.quantile(0.95)

    def result(verdict: RegressionVerdict) -> RegressionAssessment:
        return RegressionAssessment(verdict, p95_now, p95_base, now.count, baseline.count)

    if now.count < rules.min_calls:
        return result(RegressionVerdict.TOO_FEW_CALLS_NOW)
    if baseline.count < rules.min_calls or p95_base is None:
        return result(RegressionVerdict.NO_BASELINE)
    assert p95_now is not None  # count > 0 was checked
    if p95_now >= rules.factor * p95_base and p95_now - p95_base >= rules.min_increase_ms:
        return result(RegressionVerdict.REGRESSED)
    return result(RegressionVerdict.STEADY)
