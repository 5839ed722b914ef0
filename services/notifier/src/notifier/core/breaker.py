"""A circuit breaker per destination: stop hammering one that keeps failing.

After ``failure_threshold`` consecutive failures the breaker opens for ``open_s``; then
one trial send is let through (half-open). Its success closes the breaker, its failure
opens it again. Time comes from the caller, so the core stays pure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class CircuitBreaker:
    failure_threshold: int = 5
    open_s: float = 10.0
    _failures: int = 0
    _opened_at: float | None = None
    _trial_out: bool = field(default=False)

    def state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if now - self._opened_at < self.open_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def wait_s(self, now: float) -> float:
        """How long until a send may go out: 0 when it may go now."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return 0.0
        if state is BreakerState.OPEN:
            assert self._opened_at is not None
            return self._opened_at + self.open_s - now
        if self._trial_out:  # one trial at a time while half-open
            return self.open_s
        self._trial_out = True
        return 0.0

    def snapshot(self, now: float) -> dict[str, object]:
        """Its state for the API: state, consecutive failures, seconds until a send may
        go (0 when closed or half-open)."""
        state = self.state(now)
        retry_in = 0.0
        if state is BreakerState.OPEN and self._opened_at is not None:
            retry_in = max(0.0, self._opened_at + self.open_s - now)
        return {"state": state.value, "failures": self._failures, "retry_in_s": retry_in}

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_out = False

    def record_failure(self, now: float) -> None:
        self._failures += 1
        self._trial_out = False
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = now
