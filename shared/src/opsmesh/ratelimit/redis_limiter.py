"""The buckets in Redis, shared by every replica: Slack's one message per second per
channel, or a receiver's notifications per minute, hold for the deployment, not per
process.

Each operation is one call of one Lua script, atomic in Redis, repeating the steps of
``opsmesh.ratelimit.gcra`` so the in-memory twin decides alike. The time is Redis'
own (``TIME``), so replicas' clocks need not agree, unless the limiter is given a clock
(the alert-engine's buckets run on its injected clock, as its flush timers do).
A bucket's key expires a minute after the bucket would be full again, when forgetting
it changes no decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from opsmesh.ratelimit.base import Ask
from opsmesh.ratelimit.gcra import Admission, Rate

# What Redis failing to answer looks like (down, unreachable, slow, loading): the
# ``FallbackRateLimiter`` then decides in process. Anything else is a bug.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)

# ARGV: operation (take | reserve | push), interval, span, now ('' = Redis' clock),
# seconds (push). Returns {admitted 0|1, seconds to wait}; numbers travel as '%.17g'
# strings, which give every double back exactly (Lua numbers returned to Redis are
# cut to integers, and tostring keeps 14 digits: a 0.1 ms grain at epoch seconds).
_SCRIPT = """
local interval = tonumber(ARGV[2])
local span = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local tat = tonumber(redis.call('GET', KEYS[1]))
local start = tat
if tat == nil or tat < now then start = now end
local new_tat
local wait = 0
if ARGV[1] == 'push' then
  new_tat = math.max(start, now + tonumber(ARGV[5]) + (span - interval))
else
  new_tat = start + interval
  local ahead = new_tat - now
  if ahead > span then
    wait = ahead - span
    if ARGV[1] == 'take' then
      return {0, string.format('%.17g', wait)}
    end
  end
end
redis.call('SET', KEYS[1], string.format('%.17g', new_tat),
  'PX', math.ceil((new_tat - now) * 1000) + 60000)
return {1, string.format('%.17g', wait)}
"""


class RedisRateLimiter:
    """``prefix`` names the service's buckets (``<prefix><key>``); ``clock``: None for
    Redis' time, else the time every decision is made at."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._script = redis.register_script(_SCRIPT)

    def _now(self) -> float | str:
        return "" if self._clock is None else self._clock()

    async def try_take(self, asks: Sequence[Ask]) -> list[Admission]:
        """Every ask in one pipeline: one round trip however many."""
        if not asks:
            return []
        now = self._now()
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, rate in asks:
                await self._script(
                    keys=[self._prefix + key],
                    args=["take", rate.interval_s, rate.span_s, now],
                    client=pipe,
                )
            answers = await pipe.execute()
        return [Admission(bool(int(admitted)), float(wait)) for admitted, wait in answers]

    async def reserve(self, key: str, rate: Rate) -> float:
        _, wait = await self._script(
            keys=[self._prefix + key], args=["reserve", rate.interval_s, rate.span_s, self._now()]
        )
        return float(wait)

    async def push_back(self, key: str, rate: Rate, seconds: float) -> None:
        await self._script(
            keys=[self._prefix + key],
            args=["push", rate.interval_s, rate.span_s, self._now(), seconds],
        )
