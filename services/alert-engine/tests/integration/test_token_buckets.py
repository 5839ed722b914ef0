"""The token-bucket contract, run against both implementations: the Lua script on the
session's real Redis (``RedisTokenBuckets``) and its in-process twin
(``MemoryTokenBuckets``, which the engine falls back to while Redis fails). The same
tests pass on both, and a seeded random walk checks they decide alike at every step.

The caller passes the time (``now``) to both, so every step here is in simulated time;
Redis' own clock only runs the keys' expiry. The in-process variant needs no
infrastructure (``make unit`` runs it); the Redis one is marked ``integration``."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from tests.fixtures.kafka import eventually

from alert_engine.ratelimit import (
    Limit,
    Limits,
    MemoryTokenBuckets,
    RateLimiter,
    RedisTokenBuckets,
)
from opsmesh_dev.infra import Endpoints

T0 = 1_700_000_000.0

Buckets = Callable[[Limits], RateLimiter]


def _prefix() -> str:
    return f"test-rl:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_client(infra: Endpoints) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(infra.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(
    params=[
        pytest.param("in_process", id="in-process"),
        pytest.param("redis", id="redis", marks=pytest.mark.integration),
    ]
)
def buckets(request: pytest.FixtureRequest) -> Buckets:
    """A fresh set of buckets for the given limits (Redis: under a key prefix of its own)."""
    if request.param == "in_process":
        return MemoryTokenBuckets
    client: aioredis.Redis = request.getfixturevalue("redis_client")
    return lambda limits: RedisTokenBuckets(client, limits, prefix=_prefix())


async def _takes(limiter: RateLimiter, receiver: str, now: float, n: int) -> list[bool]:
    return [await limiter.allow(receiver, now) for _ in range(n)]


# -- the contract, on both ------------------------------------------------------------


async def test_admits_exactly_the_burst_then_refuses(buckets: Buckets) -> None:
    limiter = buckets(Limits(per_receiver={"r": Limit(per_minute=60, burst=5)}))
    assert await _takes(limiter, "r", T0, 7) == [True] * 5 + [False] * 2


async def test_one_flush_takes_a_token_per_entry_in_order(buckets: Buckets) -> None:
    limiter = buckets(Limits(per_receiver={"r": Limit(per_minute=60, burst=3)}))
    assert await limiter.allow_many(["r"] * 5, T0) == [True, True, True, False, False]
    assert await limiter.allow_many(["r"], T0) == [False]


async def test_refills_at_the_configured_rate(buckets: Buckets) -> None:
    # 6 per minute: one token every 10 s, up to the burst of 2.
    limiter = buckets(Limits(per_receiver={"r": Limit(per_minute=6, burst=2)}))
    assert await _takes(limiter, "r", T0, 3) == [True, True, False]
    assert not await limiter.allow("r", T0 + 9.9)
    assert await limiter.allow("r", T0 + 10)
    assert not await limiter.allow("r", T0 + 10)
    # Quarter tokens add up: four steps of 2.5 s make the next one.
    for step in (12.5, 15, 17.5):
        assert not await limiter.allow("r", T0 + step)
    assert await limiter.allow("r", T0 + 20)
    # A long pause refills only up to the burst.
    assert await _takes(limiter, "r", T0 + 3600, 3) == [True, True, False]


async def test_refused_attempts_cost_nothing(buckets: Buckets) -> None:
    limiter = buckets(Limits(per_receiver={"r": Limit(per_minute=60, burst=1)}))
    assert await limiter.allow("r", T0)
    for i in range(5):
        assert not await limiter.allow("r", T0 + 0.125 * i)
    assert await limiter.allow("r", T0 + 1)


async def test_time_going_backwards_does_not_refill(buckets: Buckets) -> None:
    limiter = buckets(Limits(per_receiver={"r": Limit(per_minute=60, burst=1)}))
    assert await limiter.allow("r", T0 + 100)
    assert not await limiter.allow("r", T0)  # a replica with a slower clock
    assert not await limiter.allow("r", T0 + 100.5)
    assert await limiter.allow("r", T0 + 101)


async def test_each_receiver_has_its_own_bucket(buckets: Buckets) -> None:
    limiter = buckets(Limits(default=Limit(60, 1), per_receiver={"big": Limit(60, 3)}))
    assert await _takes(limiter, "a", T0, 2) == [True, False]
    assert await limiter.allow("b", T0), "the default limit, but a bucket of its own"
    assert await _takes(limiter, "big", T0, 4) == [True, True, True, False]
    assert await limiter.allow_many(["a", "big", "c", "c"], T0) == [False, False, True, False]


async def test_unlimited_receivers_are_always_admitted(buckets: Buckets) -> None:
    limiter = buckets(Limits(per_receiver={"r": Limit(60, 1)}))
    assert await limiter.allow_many(["free", "r", "free", "r", "free"], T0) == [
        True,
        True,
        True,
        False,
        True,
    ]
    assert all(await limiter.allow_many(["free"] * 500, T0))


# -- Redis against its twin -----------------------------------------------------------


@pytest.mark.integration
async def test_redis_decides_as_the_in_process_twin_at_every_step(
    redis_client: aioredis.Redis,
) -> None:
    """A seeded random walk over limits and (fractional) instants, including steps that
    land exactly on a token's refill. Redis once stored its state with Lua's
    ``tostring`` (14 digits: a 0.1 ms grain at today's epoch seconds) and disagreed with
    the twin at a refill's edge in about a third of these walks."""
    rng = random.Random(18)
    steps = 0
    for walk in range(120):
        limit = Limit(
            per_minute=rng.choice([0.7, 1, 6.5, 7, 13, 20, 60, 600]),
            burst=rng.choice([1, 2, 3, 5]),
        )
        limits = Limits(default=limit)
        redis = RedisTokenBuckets(redis_client, limits, prefix=_prefix())
        twin = MemoryTokenBuckets(limits)
        refill_s = 60 / limit.per_minute
        now = T0 + rng.random()
        for step in range(30):
            now += rng.choice([0.0, refill_s, refill_s / 2, refill_s / 3, rng.random() * 3])
            receivers = rng.choice([["a"], ["a", "b"], ["a", "a", "b", "a"]])
            got = await redis.allow_many(receivers, now)
            want = await twin.allow_many(receivers, now)
            assert got == want, f"walk {walk} step {step}: {limit} at {now!r}"
            steps += 1
    assert steps == 120 * 30


# -- Redis only: what the twin cannot show --------------------------------------------


@pytest.fixture
async def second_client(infra: Endpoints) -> AsyncIterator[aioredis.Redis]:
    """Another replica's connection pool to the same Redis."""
    client = aioredis.Redis.from_url(infra.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.mark.integration
async def test_two_replicas_share_one_bucket(
    redis_client: aioredis.Redis, second_client: aioredis.Redis
) -> None:
    limits = Limits(per_receiver={"r": Limit(per_minute=6, burst=3)})
    prefix = _prefix()
    a = RedisTokenBuckets(redis_client, limits, prefix=prefix)
    b = RedisTokenBuckets(second_client, limits, prefix=prefix)
    assert await a.allow_many(["r", "r"], T0) == [True, True]
    assert await b.allow_many(["r", "r"], T0) == [True, False], "B sees what A took"
    assert not await a.allow("r", T0 + 5)
    # One token every 10 s, for whichever replica asks first.
    assert await b.allow("r", T0 + 10)
    assert not await a.allow("r", T0 + 10)
    # B's clock half a second behind A's: what A took is not given back.
    assert await a.allow("r", T0 + 20)
    assert not await b.allow("r", T0 + 19.5)


@pytest.mark.integration
async def test_a_storm_from_two_replicas_at_once_admits_exactly_the_burst(
    redis_client: aioredis.Redis, second_client: aioredis.Redis
) -> None:
    """Each take is one Lua script, atomic in Redis: concurrent flushes of two replicas
    (pipelines of many takes each, interleaved) never admit more than the burst."""
    limits = Limits(per_receiver={"r": Limit(per_minute=60, burst=7)})
    prefix = _prefix()
    replicas = [
        RedisTokenBuckets(client, limits, prefix=prefix) for client in (redis_client, second_client)
    ]
    flushes = [replicas[i % 2].allow_many(["r"] * 5, T0) for i in range(8)]
    singles = [replicas[i % 2].allow("r", T0) for i in range(10)]
    decided = await asyncio.gather(asyncio.gather(*flushes), asyncio.gather(*singles))
    many, one = decided
    assert sum(map(sum, many)) + sum(one) == 7
    # Ten seconds later the bucket is full again, for both together.
    later = await asyncio.gather(*(r.allow_many(["r"] * 5, T0 + 10) for r in replicas))
    assert sum(map(sum, later)) == 7


@pytest.mark.integration
async def test_bucket_keys_expire_once_the_bucket_would_be_full_again(
    redis_client: aioredis.Redis,
) -> None:
    """Every take sets the key to expire ``ceil(burst / rate) + 60`` s later: by then
    the bucket has refilled, so forgetting it changes no decision, and Redis holds no
    key of a receiver that stopped sending."""
    limit = Limit(per_minute=0.5, burst=3)  # 360 s from empty to full
    prefix = _prefix()
    limiter = RedisTokenBuckets(redis_client, Limits(per_receiver={"r": limit}), prefix=prefix)
    key = f"{prefix}:r"
    expected_ttl = math.ceil(limit.burst / limit.per_second) + 60
    assert await _takes(limiter, "r", T0, 4) == [True, True, True, False]
    ttl = await redis_client.ttl(key)
    assert expected_ttl - 2 <= ttl <= expected_ttl
    assert ttl > limit.burst / limit.per_second, "kept at least as long as a full refill"

    # Each take sets the expiry again.
    await redis_client.expire(key, 5)
    assert not await limiter.allow("r", T0 + 1)
    assert await redis_client.ttl(key) >= expected_ttl - 2

    # Let Redis expire it itself (sooner than the real 420 s): the bucket starts full.
    await redis_client.pexpire(key, 50)
    await eventually(
        lambda: redis_client.exists(key), until=lambda n: n == 0, what="the key expired"
    )
    assert await _takes(limiter, "r", T0 + 2, 4) == [True, True, True, False]

    # Unlimited receivers write nothing.
    assert all(await limiter.allow_many(["free"] * 10, T0))
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}:*")] == [key.encode()]
