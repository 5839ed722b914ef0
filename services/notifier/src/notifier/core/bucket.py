"""Token bucket: a destination's rate limit (Slack: 1 message/s per channel; PagerDuty:
about 120 events/min per routing key). Pure: the caller passes the time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate_per_s: float
    burst: float
    _tokens: float | None = None
    _at: float = 0.0

    def reserve(self, now: float) -> float:
        """Take one token; returns how long to wait before using it (0: now).

        Reserving ahead (tokens may go negative) keeps waiting senders in order and
        never lets a burst overshoot the rate.
        """
        if self._tokens is None:
            self._tokens = self.burst
        else:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate_per_s

    def push_back(self, now: float, seconds: float) -> None:
        """The destination said "Retry-After": nothing more goes out before then."""
        self.reserve(now)
        assert self._tokens is not None
        self._tokens = min(self._tokens, -seconds * self.rate_per_s)
