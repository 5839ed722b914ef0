"""GCRA, the rate-limit arithmetic every limiter here shares. Pure: the caller passes the
time and the bucket's state.

A bucket of ``burst`` slots refilling at ``per_second`` is kept as one number, its
theoretical arrival time (TAT): when the schedule of slots taken so far would end if each
took one ``interval``. A slot is free while that schedule runs no further than a full
bucket (``span`` = ``burst`` intervals) ahead of now. One number instead of (tokens,
time) lets a limiter both *try to take a slot now or be told when one frees up* (the
alert-engine's flushes) and *reserve the next slot and wait for it* (the notifier's
sends); and a TAT at or before now is a full bucket, so forgetting it changes nothing.

The Redis script (``opsmesh.ratelimit.redis``) repeats these steps operation for
operation, so Redis and the in-memory twin decide alike to the last bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` slots on average, up to ``burst`` at once."""

    per_second: float
    burst: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_second) and self.per_second > 0):
            raise ValueError(f"a rate must be positive and finite, not {self.per_second!r}")
        if not (math.isfinite(self.burst) and self.burst >= 1):
            raise ValueError(f"a burst must be at least 1, not {self.burst!r}")

    @classmethod
    def per_minute(cls, count: float, burst: float) -> Rate:
        return cls(count / 60.0, burst)

    @property
    def interval_s(self) -> float:
        """The time one slot takes to refill."""
        return 1.0 / self.per_second

    @property
    def span_s(self) -> float:
        """How far ahead of now the schedule may run: a full bucket's slots."""
        return self.burst * self.interval_s


@dataclass(frozen=True, slots=True)
class Admission:
    """One try to take a slot now."""

    admitted: bool
    # 0 when admitted; else how long until a slot frees up (nothing was taken).
    retry_in_s: float


def try_take(tat: float | None, now: float, rate: Rate) -> tuple[Admission, float | None]:
    """A slot now, or none (the state unchanged). Returns the answer and the new TAT."""
    new_tat = _start(tat, now) + rate.interval_s
    ahead = new_tat - now
    if ahead > rate.span_s:
        return Admission(False, ahead - rate.span_s), tat
    return Admission(True, 0.0), new_tat


def reserve(tat: float | None, now: float, rate: Rate) -> tuple[float, float]:
    """The next slot, whenever it is: seconds to wait for it (0: now), and the new TAT.

    Reserving ahead keeps waiting senders in order and never lets them overshoot."""
    new_tat = _start(tat, now) + rate.interval_s
    return max(0.0, (new_tat - now) - rate.span_s), new_tat


def push_back(tat: float | None, now: float, rate: Rate, seconds: float) -> float:
    """No slot before ``now + seconds`` (the remote end said Retry-After), and the bucket
    empty then: the first slot frees up at that instant, the next an interval later.
    Applying it twice changes nothing. Returns the new TAT."""
    return max(_start(tat, now), now + seconds + (rate.span_s - rate.interval_s))


def expires_in(tat: float, now: float) -> float:
    """How long the state matters: from its TAT on the bucket is full again, as if new."""
    return max(0.0, tat - now)


def _start(tat: float | None, now: float) -> float:
    # A TAT in the past is a full bucket: slots do not pile up beyond the burst. A TAT
    # ahead of a caller's clock (another replica's clock runs ahead) is kept: what was
    # taken is never given back.
    return now if tat is None or tat < now else tat
