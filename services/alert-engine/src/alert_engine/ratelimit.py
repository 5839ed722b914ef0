"""Per-receiver notification rate limits: token buckets in Redis, shared by replicas.

A bucket holds up to ``burst`` tokens and refills at ``per_minute / 60`` per second; a
flush that finds it empty is not sent now but retried at the group's next interval, so
a limited receiver delays only itself and nothing is lost.

While Redis does not answer (an error, or no answer within a timeout), ``FallbackBuckets``
decides with the same buckets in this process instead: the limit then holds per replica
rather than for the group, and notifications are never held up by Redis.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from opsmesh.logging import get_logger

log = get_logger(__name__)

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) * rate) end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
-- %.17g: every double back exactly (tostring keeps 14 digits, a 0.1 ms grain at today's
-- epoch seconds, so Redis and the in-process buckets disagreed at a refill's edge)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'at', string.format('%.17g', math.max(now, at)))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return allowed
"""


@dataclass(frozen=True, slots=True)
class Limit:
    per_minute: float
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    default: Limit | None = None
    per_receiver: Mapping[str, Limit] = field(default_factory=dict)

    def for_receiver(self, receiver: str) -> Limit | None:
        return self.per_receiver.get(receiver, self.default)


def parse_limits(default_per_minute: float, default_burst: int, overrides: str) -> Limits:
    """``overrides``: ``pager=10/20,slack=60/60`` (per minute / burst)."""
    per_receiver = {}
    for part in (p.strip() for p in overrides.split(",") if p.strip()):
        name, _, spec = part.partition("=")
        rate, _, burst = spec.partition("/")
        try:
            limit = Limit(float(rate), int(burst or math.ceil(float(rate))))
        except ValueError:
            raise ValueError(f"bad receiver limit {part!r} (want name=per_minute/burst)") from None
        if limit.per_minute <= 0 or limit.burst < 1:
            raise ValueError(f"bad receiver limit {part!r}: rate and burst must be positive")
        per_receiver[name.strip()] = limit
    default = Limit(default_per_minute, max(1, default_burst)) if default_per_minute > 0 else None
    return Limits(default, per_receiver)


class RateLimiter(Protocol):
    async def allow(self, receiver: str, now: float) -> bool: ...

    async def allow_many(self, receivers: Sequence[str], now: float) -> list[bool]:
        """One token per entry, taken in order (a receiver may appear more than once)."""
        ...


class RedisTokenBuckets:
    def __init__(
        self, redis: aioredis.Redis, limits: Limits, prefix: str = "alert-engine:rl"
    ) -> None:
        self._redis = redis
        self._limits = limits
        self._prefix = prefix
        self._script = redis.register_script(_TAKE)

    async def allow(self, receiver: str, now: float) -> bool:
        limit = self._limits.for_receiver(receiver)
        if limit is None:
            return True
        allowed = await self._script(
            keys=[f"{self._prefix}:{receiver}"], args=[limit.per_second, limit.burst, now]
        )
        return bool(int(allowed))

    async def allow_many(self, receivers: Sequence[str], now: float) -> list[bool]:
        """Every limited receiver's take in one pipeline (one round trip per flush)."""
        out = [True] * len(receivers)
        limited = [
            (i, r, limit)
            for i, r in enumerate(receivers)
            if (limit := self._limits.for_receiver(r)) is not None
        ]
        if not limited:
            return out
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, receiver, limit in limited:
                await self._script(
                    keys=[f"{self._prefix}:{receiver}"],
                    args=[limit.per_second, limit.burst, now],
                    client=pipe,
                )
            results = await pipe.execute()
        for (i, _, _), allowed in zip(limited, results, strict=True):
            out[i] = bool(int(allowed))
        return out


class MemoryTokenBuckets:
    """The in-process fake of ``RedisTokenBuckets`` (same arithmetic), for tests."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._state: dict[str, tuple[float, float]] = {}

    async def allow(self, receiver: str, now: float) -> bool:
        limit = self._limits.for_receiver(receiver)
        if limit is None:
            return True
        tokens, at = self._state.get(receiver, (float(limit.burst), now))
        if now > at:
            tokens = min(limit.burst, tokens + (now - at) * limit.per_second)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._state[receiver] = (tokens, max(now, at))
        return allowed

    async def allow_many(self, receivers: Sequence[str], now: float) -> list[bool]:
        return [await self.allow(r, now) for r in receivers]


class DecidedBy(enum.Enum):
    """Which buckets decide a flush's rate limits."""

    REDIS = "redis"
    IN_PROCESS = "in_process"  # Redis failed or did not answer: this replica's buckets


class FallbackBuckets:
    """``primary`` (Redis), or ``fallback`` (in process) while the primary fails or does
    not answer within ``timeout_s``; the primary is asked again ``retry_after_s`` after
    its last failure. Only Redis' own failures (``RedisError``, ``OSError``, the timeout)
    fall back; any other exception is a bug and propagates. ``on_fallback`` is told of
    every decision the fallback made, ``on_switch`` of every change of ``DecidedBy``.

    Receivers without a limit are admitted here, without asking either: a flush of only
    those needs no bucket, so it never waits on Redis, and it cannot end a fall-back (the
    primary would answer without Redis, and the switch back would be a false claim)."""

    def __init__(
        self,
        primary: RateLimiter,
        fallback: RateLimiter,
        limits: Limits,
        *,
        timeout_s: float,
        retry_after_s: float,
        monotonic: Callable[[], float],
        on_fallback: Callable[[int], None] = lambda _: None,
        on_switch: Callable[[DecidedBy], None] = lambda _: None,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._limits = limits
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._monotonic = monotonic
        self._on_fallback = on_fallback
        self._on_switch = on_switch
        self._down_until: float | None = None

    async def allow(self, receiver: str, now: float) -> bool:
        return (await self.allow_many([receiver], now))[0]

    async def allow_many(self, receivers: Sequence[str], now: float) -> list[bool]:
        out = [True] * len(receivers)
        limited = [i for i, r in enumerate(receivers) if self._limits.for_receiver(r) is not None]
        if limited:
            decided = await self._decide([receivers[i] for i in limited], now)
            for i, allowed in zip(limited, decided, strict=True):
                out[i] = allowed
        return out

    async def _decide(self, receivers: Sequence[str], now: float) -> list[bool]:
        if self._down_until is None or self._monotonic() >= self._down_until:
            try:
                allowed = await asyncio.wait_for(
                    self._primary.allow_many(receivers, now), self._timeout_s
                )
            except (RedisError, OSError, TimeoutError) as exc:
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
                return allowed
        self._on_fallback(len(receivers))
        return await self._fallback.allow_many(receivers, now)
