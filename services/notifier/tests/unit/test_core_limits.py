"""Circuit breaker and the in-flight offset tracker (pure, clock passed in). The rate
limits are ``opsmesh.ratelimit``'s, tested in shared/."""

from __future__ import annotations

import pytest

from notifier.core.breaker import BreakerState, CircuitBreaker
from notifier.core.inflight import InFlight


def test_breaker_opens_after_consecutive_failures_and_half_opens_later() -> None:
    breaker = CircuitBreaker(failure_threshold=3, open_s=10.0)
    for _ in range(2):
        breaker.record_failure(now=0.0)
    assert breaker.state(0.0) is BreakerState.CLOSED
    assert breaker.wait_s(0.0) == 0.0
    breaker.record_failure(now=1.0)
    assert breaker.state(5.0) is BreakerState.OPEN
    assert breaker.wait_s(5.0) == pytest.approx(6.0)
    assert breaker.state(11.0) is BreakerState.HALF_OPEN
    assert breaker.wait_s(11.0) == 0.0  # the one trial
    assert breaker.wait_s(11.0) > 0  # nobody else while the trial is out


def test_breaker_trial_failure_reopens_and_success_closes() -> None:
    breaker = CircuitBreaker(failure_threshold=1, open_s=10.0)
    breaker.record_failure(now=0.0)
    assert breaker.wait_s(10.0) == 0.0
    breaker.record_failure(now=10.0)
    assert breaker.state(15.0) is BreakerState.OPEN
    assert breaker.wait_s(20.0) == 0.0
    breaker.record_success()
    assert breaker.state(20.0) is BreakerState.CLOSED


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, open_s=10.0)
    breaker.record_failure(now=0.0)
    breaker.record_success()
    breaker.record_failure(now=0.0)
    assert breaker.state(0.0) is BreakerState.CLOSED


def test_inflight_holds_the_lowest_unfinished_offset_per_partition() -> None:
    inflight: InFlight[str] = InFlight()
    for offset in (5, 6, 7):
        inflight.add("p0", offset)
    inflight.add("p1", 3)
    assert inflight.hold_from() == {"p0": 5, "p1": 3}
    inflight.done("p0", 6)  # finished out of order: 5 still holds
    assert inflight.hold_from() == {"p0": 5, "p1": 3}
    inflight.done("p0", 5)
    assert inflight.hold_from() == {"p0": 7, "p1": 3}
    inflight.done("p1", 3)
    inflight.done("p0", 7)
    assert inflight.hold_from() == {}
    assert len(inflight) == 0


def test_inflight_counts_the_same_offset_twice_until_both_finish() -> None:
    inflight: InFlight[str] = InFlight()
    inflight.add("p", 1)
    inflight.add("p", 1)  # a batch retried after the handler raised midway
    inflight.done("p", 1)
    assert inflight.hold_from() == {"p": 1}
    inflight.done("p", 1)
    inflight.done("p", 1)  # unknown: ignored
    assert inflight.hold_from() == {}
