"""Per-receiver notification limits on the shared rate limiter (``opsmesh.ratelimit``).

A receiver's bucket holds up to ``burst`` notifications and refills at ``per_minute``;
each notification a flush would send takes one, and a flush the bucket refuses is not
sent now but retried at the group's next interval, so a limited receiver delays only
itself and nothing is lost. The buckets are Redis', shared by the replicas, and this
process' own while Redis does not answer (``bootstrap.rate_limiter``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opsmesh.ratelimit import Rate, RateLimiter


@dataclass(frozen=True, slots=True)
class Limits:
    default: Rate | None = None
    per_receiver: Mapping[str, Rate] = field(default_factory=dict)

    def for_receiver(self, receiver: str) -> Rate | None:
        return self.per_receiver.get(receiver, self.default)


def parse_limits(default_per_minute: float, default_burst: int, overrides: str) -> Limits:
    """``overrides``: ``pager=10/20,slack=60/60`` (per minute / burst)."""
    per_receiver = {}
    for part in (p.strip() for p in overrides.split(",") if p.strip()):
        name, _, spec = part.partition("=")
        rate, _, burst = spec.partition("/")
        try:
            per_minute = float(rate)
            per_receiver[name.strip()] = Rate.per_minute(
                per_minute, int(burst or math.ceil(per_minute))
            )
        except (ValueError, OverflowError):  # not numbers, not positive, not finite
            raise ValueError(
                f"bad receiver limit {part!r} (want name=per_minute/burst, both positive)"
            ) from None
    default = (
        Rate.per_minute(default_per_minute, max(1, default_burst))
        if default_per_minute > 0
        else None
    )
    return Limits(default, per_receiver)


class ReceiverLimiter:
    """Asks ``limiter`` for the receivers that have a limit; the others are admitted
    without asking, so a flush of only those never waits on Redis."""

    def __init__(self, limiter: RateLimiter, limits: Limits) -> None:
        self._limiter = limiter
        self._limits = limits

    async def allow_many(self, receivers: Sequence[str]) -> list[bool]:
        """One notification per entry, taken in order (a receiver may appear more than
        once); True: send it now."""
        out = [True] * len(receivers)
        limited = [
            (i, (receiver, rate))
            for i, receiver in enumerate(receivers)
            if (rate := self._limits.for_receiver(receiver)) is not None
        ]
        if limited:
            answers = await self._limiter.try_take([ask for _, ask in limited])
            for (i, _), answer in zip(limited, answers, strict=True):
                out[i] = answer.admitted
        return out
