"""Rate limits that never hold work up on Redis: Redis' buckets while it answers, this
process' own while it does not. The limit then holds per replica rather than for the
deployment, the documented price of not stalling on Redis.

Only Redis' own failures fall back (``REDIS_UNAVAILABLE``: its errors, a socket error,
no answer within ``timeout_s``); any other exception is a bug and propagates. After a
failure Redis is asked again only ``retry_after_s`` later, so an outage costs one
timeout, not one per decision.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from opsmesh.logging import get_logger
from opsmesh.ratelimit.base import Ask, RateLimiter
from opsmesh.ratelimit.gcra import Admission, Rate
from opsmesh.ratelimit.redis_limiter import REDIS_UNAVAILABLE

log = get_logger(__name__)

T = TypeVar("T")


class DecidedBy(enum.Enum):
    """Which buckets decide."""

    REDIS = "redis"
    IN_PROCESS = "in_process"  # Redis failed or did not answer: this replica's buckets


class FallbackRateLimiter:
    """``primary`` (Redis), or ``fallback`` (in process) while the primary fails.
    ``on_fallback`` is told how many slots each decision made in process covered,
    ``on_switch`` of every change of ``DecidedBy``; ``monotonic`` times the retry."""

    def __init__(
        self,
        primary: RateLimiter,
        fallback: RateLimiter,
        *,
        timeout_s: float,
        retry_after_s: float,
        monotonic: Callable[[], float],
        on_fallback: Callable[[int], None] = lambda _: None,
        on_switch: Callable[[DecidedBy], None] = lambda _: None,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._monotonic = monotonic
        self._on_fallback = on_fallback
        self._on_switch = on_switch
        self._down_until: float | None = None

    @property
    def decided_by(self) -> DecidedBy:
        return DecidedBy.REDIS if self._down_until is None else DecidedBy.IN_PROCESS

    async def try_take(self, asks: Sequence[Ask]) -> list[Admission]:
        if not asks:  # nothing to decide: no question to Redis, no claim it is back
            return []
        return await self._decide(lambda limiter: limiter.try_take(asks), len(asks))

    async def reserve(self, key: str, rate: Rate) -> float:
        return await self._decide(lambda limiter: limiter.reserve(key, rate), 1)

    async def push_back(self, key: str, rate: Rate, seconds: float) -> None:
        # Held in process too (pushing back twice changes nothing), so a Retry-After
        # still holds if Redis fails right after.
        await self._fallback.push_back(key, rate, seconds)
        await self._decide(lambda limiter: limiter.push_back(key, rate, seconds), 0)

    async def _decide(self, call: Callable[[RateLimiter], Awaitable[T]], slots: int) -> T:
        if self._down_until is None or self._monotonic() >= self._down_until:
            try:
                answer = await asyncio.wait_for(call(self._primary), self._timeout_s)
            except REDIS_UNAVAILABLE as exc:
                if self._down_until is None:
                    log.warning(
                        "rate limits fall back to in-process buckets",
                        error=f"{type(exc).__name__}: {exc}"[:200],
                        retry_after_s=self._retry_after_s,
                    )
                    self._on_switch(DecidedBy.IN_PROCESS)
                self._down_until = self._monotonic() + self._retry_after_s
            else:
                if self._down_until is not None:
                    log.info("rate limits back on Redis")
                    self._on_switch(DecidedBy.REDIS)
                self._down_until = None
                return answer
        if slots:
            self._on_fallback(slots)
        return await call(self._fallback)
