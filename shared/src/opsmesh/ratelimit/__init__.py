"""One rate limiter for every service: GCRA buckets (``gcra``), kept in Redis and shared
by replicas (``RedisRateLimiter``) or in this process (``MemoryRateLimiter``), with
``FallbackRateLimiter`` deciding in process while Redis fails."""

from opsmesh.ratelimit.base import Ask, RateLimiter
from opsmesh.ratelimit.fallback import DecidedBy, FallbackRateLimiter
from opsmesh.ratelimit.gcra import Admission, Rate
from opsmesh.ratelimit.memory import MemoryRateLimiter
from opsmesh.ratelimit.redis_limiter import REDIS_UNAVAILABLE, RedisRateLimiter

__all__ = [
    "REDIS_UNAVAILABLE",
    "Admission",
    "Ask",
    "DecidedBy",
    "FallbackRateLimiter",
    "MemoryRateLimiter",
    "Rate",
    "RateLimiter",
    "RedisRateLimiter",
]
