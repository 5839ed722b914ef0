"""A rate limiter that fails on demand, as Redis does: it answers (from in-memory
buckets), refuses (a connection error), never answers, or raises a bug. For the tests
of ``opsmesh.ratelimit.FallbackRateLimiter`` and of what is built on it."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence

from redis.exceptions import ConnectionError as RedisConnectionError

from opsmesh.ratelimit import Admission, Ask, MemoryRateLimiter, Rate


class Mode(enum.Enum):
    UP = "up"
    REFUSED = "refused"  # Redis down: connection refused
    SILENT = "silent"  # Redis paused: no answer at all
    BUG = "bug"  # not an outage: an exception no fallback may swallow


class FlakyRateLimiter:
    """``calls`` counts every call, answered or not."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.mode = Mode.UP
        self.calls = 0
        self._buckets = MemoryRateLimiter(clock)

    async def _fail_as_told(self) -> None:
        self.calls += 1
        if self.mode is Mode.REFUSED:
            raise RedisConnectionError("Connection refused")
        if self.mode is Mode.SILENT:
            await asyncio.Event().wait()
        if self.mode is Mode.BUG:
            raise KeyError("a bug, not an outage")

    async def try_take(self, asks: Sequence[Ask]) -> list[Admission]:
        await self._fail_as_told()
        return await self._buckets.try_take(asks)

    async def reserve(self, key: str, rate: Rate) -> float:
        await self._fail_as_told()
        return await self._buckets.reserve(key, rate)

    async def push_back(self, key: str, rate: Rate, seconds: float) -> None:
        await self._fail_as_told()
        await self._buckets.push_back(key, rate, seconds)
