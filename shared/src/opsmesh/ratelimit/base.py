"""What every rate limiter answers; the implementations keep the buckets in Redis
(``RedisRateLimiter``, shared by replicas) or in this process (``MemoryRateLimiter``),
and ``FallbackRateLimiter`` turns from the first to the second while Redis fails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from opsmesh.ratelimit.gcra import Admission, Rate

# One bucket (its key) and its rate. Keys sharing a remote limit (a Slack channel, a
# receiver) share a bucket; every caller of a key passes the same rate.
Ask = tuple[str, Rate]


class RateLimiter(Protocol):
    async def try_take(self, asks: Sequence[Ask]) -> list[Admission]:
        """One slot per ask, in order, now or not at all (a key may appear more than
        once: each takes its own slot). A refusal costs nothing."""
        ...

    async def reserve(self, key: str, rate: Rate) -> float:
        """The next slot, whenever it frees up: seconds to wait before using it (0: now)."""
        ...

    async def push_back(self, key: str, rate: Rate, seconds: float) -> None:
        """No slot for anyone before ``seconds`` from now (the remote end's Retry-After)."""
        ...
