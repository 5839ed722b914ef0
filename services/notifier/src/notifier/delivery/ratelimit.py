"""Rate-limit buckets in Redis, so replicas share a destination's limit (Slack's one
message per second per channel holds for the deployment, not per process).

GCRA (a token bucket kept as one timestamp): each send reserves the next slot and is
told how long to wait for it. Time comes from Redis (``TIME``), so replicas' clocks do
not need to agree.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

# What a shared limit's failure to answer looks like (Redis down, unreachable, slow):
# the sender then keeps the limit per process. Anything else is a bug and propagates.
SHARED_LIMIT_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local push = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if push > 0 then
  if tat < now + push then tat = now + push end
  redis.call('SET', KEYS[1], tat, 'PX', math.ceil(tat - now + tolerance + 1000))
  return 0
end
local new_tat = tat + interval
local wait = new_tat - tolerance - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now + tolerance + 1000))
return wait
"""


class RedisRateLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str = "notifier:rate:") -> None:
        self._script = redis.register_script(_RESERVE)
        self._prefix = prefix

    async def reserve(self, key: str, rate_per_s: float, burst: float) -> float:
        """Take the next slot; seconds to wait before using it (0: now)."""
        interval = 1000.0 / rate_per_s
        wait_ms = await self._script(
            keys=[self._prefix + key], args=[interval, interval * max(burst, 1), 0]
        )
        return float(wait_ms) / 1000.0

    async def push_back(self, key: str, rate_per_s: float, burst: float, seconds: float) -> None:
        """The destination said Retry-After: no slot before then, for every replica."""
        interval = 1000.0 / rate_per_s
        await self._script(
            keys=[self._prefix + key],
            args=[interval, interval * max(burst, 1), max(1, int(seconds * 1000))],
        )
