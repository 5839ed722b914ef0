"""How long a consumer has gone without progress, and what that means.

Progress is a handler call that returned (or a poison record isolated and set aside).
From the first failure after the last progress the watch counts: past ``stall_after_s``
the consumer is *stalled* (readiness red, ``opsmesh_consumer_stalled`` 1), past
``give_up_after_s`` it is *exhausted* and the worker raises, so the process exits
non-zero and its supervisor restarts it (a fresh process, a replay from the last commit).
Pure: times come from the caller's monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsmesh.kafka.failures import FailureClass


@dataclass(frozen=True, slots=True)
class Failure:
    failure_class: FailureClass
    error: str  # ``failures.describe`` of the exception


@dataclass(slots=True)
class StallWatch:
    stall_after_s: float
    give_up_after_s: float
    since: float | None = None  # monotonic time of the first failure since progress
    last: Failure | None = None
    failures: int = 0  # since progress

    def failed(self, now: float, failure: Failure) -> None:
        if self.since is None:
            self.since = now
        self.last = failure
        self.failures += 1

    def progressed(self) -> None:
        self.since = None
        self.last = None
        self.failures = 0

    def stalled_for(self, now: float) -> float:
        return 0.0 if self.since is None else max(0.0, now - self.since)

    def stalled(self, now: float) -> str | None:
        """Why the consumer counts as stalled now, or None while it does not."""
        if self.since is None or self.last is None:
            return None
        waited = now - self.since
        if waited < self.stall_after_s:
            return None
        return (
            f"no progress for {waited:.0f}s after {self.failures} "
            f"{self.last.failure_class.value} failures; last: {self.last.error}"
        )

    def exhausted(self, now: float) -> bool:
        return self.since is not None and now - self.since >= self.give_up_after_s
