"""The rate limiter's contract, run against both implementations: the Lua script on the
session's real Redis (``RedisRateLimiter``) and its in-memory twin
(``MemoryRateLimiter``, which ``FallbackRateLimiter`` decides with while Redis fails).
The same tests pass on both, and a seeded random walk checks they decide alike at every
step.

Both are given the same settable clock, so every step is in simulated time; Redis' own
clock only runs the keys' expiry, and the tests of Redis' time (``clock=None``, as the
notifier runs it) measure real waits. The in-memory variant needs no infrastructure
(``make unit`` runs it); the Redis one is marked ``integration``."""

from __future__ import annotations

import asyncio
import math
import random
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from tests.fixtures.kafka import eventually

from opsmesh.ratelimit import (
    REDIS_UNAVAILABLE,
    Admission,
    DecidedBy,
    FallbackRateLimiter,
    MemoryRateLimiter,
    Rate,
    RateLimiter,
    RedisRateLimiter,
)
from opsmesh_dev.infra import Endpoints

T0 = 1_700_000_000.0


class Now:
    """A clock the test sets, backwards too (another replica's clock lags)."""

    def __init__(self, at: float = T0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


Limiters = Callable[[Now], RateLimiter]


def _prefix() -> str:
    return f"test-rl:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def redis_client(infra: Endpoints) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(infra.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(
    params=[
        pytest.param("in_memory", id="in-memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.integration),
    ]
)
def limiters(request: pytest.FixtureRequest) -> Limiters:
    """A fresh limiter on the given clock (Redis: under a key prefix of its own)."""
    if request.param == "in_memory":
        return MemoryRateLimiter
    client: aioredis.Redis = request.getfixturevalue("redis_client")
    return lambda now: RedisRateLimiter(client, _prefix(), clock=now)


async def _takes(limiter: RateLimiter, key: str, rate: Rate, n: int) -> list[bool]:
    return [a.admitted for a in await limiter.try_take([(key, rate)] * n)]


# -- the contract, on both ------------------------------------------------------------


async def test_admits_exactly_the_burst_then_says_when(limiters: Limiters) -> None:
    now = Now()
    limiter = limiters(now)
    rate = Rate(1.0, 5)
    assert await _takes(limiter, "r", rate, 7) == [True] * 5 + [False] * 2
    now.at += 0.25
    assert await limiter.try_take([("r", rate)]) == [Admission(False, 0.75)]


async def test_asks_are_taken_in_order_each_key_its_own_bucket(limiters: Limiters) -> None:
    limiter = limiters(Now())
    one, three = Rate(1.0, 1), Rate(1.0, 3)
    got = await limiter.try_take([("a", one), ("big", three), ("a", one), ("b", one)] * 2)
    assert [a.admitted for a in got] == [True, True, False, True, False, True, False, False]
    assert await _takes(limiter, "big", three, 2) == [True, False]


async def test_refills_at_the_rate_and_refusals_cost_nothing(limiters: Limiters) -> None:
    now = Now()
    limiter = limiters(now)
    rate = Rate.per_minute(6, 2)  # one slot every 10 s, up to 2
    assert await _takes(limiter, "r", rate, 3) == [True, True, False]
    # Refused tries in between cost nothing: four steps of 2.5 s make the next slot.
    for at, admitted in [(9.9, False), (10, True), (10, False), (12.5, False), (15, False)]:
        now.at = T0 + at
        assert await _takes(limiter, "r", rate, 1) == [admitted], at
    now.at = T0 + 17.5
    assert await _takes(limiter, "r", rate, 1) == [False]
    now.at = T0 + 20
    assert await _takes(limiter, "r", rate, 1) == [True]
    now.at = T0 + 3600
    assert await _takes(limiter, "r", rate, 3) == [True, True, False], "up to the burst"


async def test_a_clock_behind_the_last_take_gets_nothing_back(limiters: Limiters) -> None:
    now = Now(T0 + 100)
    limiter = limiters(now)
    rate = Rate(1.0, 1)
    assert await _takes(limiter, "r", rate, 1) == [True]
    for at, admitted in [(0, False), (100.5, False), (101, True)]:
        now.at = T0 + at
        assert await _takes(limiter, "r", rate, 1) == [admitted]


async def test_reservations_queue_in_order_after_the_burst(limiters: Limiters) -> None:
    now = Now()
    limiter = limiters(now)
    rate = Rate(10.0, 2)
    waits = [await limiter.reserve("slack:C1", rate) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2], abs=1e-6)  # epoch-second grain
    assert await _takes(limiter, "slack:C1", rate, 1) == [False], "reserved ahead: none free"
    now.at += 10
    assert await limiter.reserve("slack:C1", rate) == 0.0, "refilled"


async def test_push_back_holds_every_slot_until_retry_after(limiters: Limiters) -> None:
    now = Now()
    limiter = limiters(now)
    rate = Rate(1.0, 5)
    await limiter.push_back("pd:key", rate, 30)
    await limiter.push_back("pd:key", rate, 30)  # twice changes nothing
    assert await limiter.try_take([("pd:key", rate)]) == [Admission(False, 30.0)]
    assert await limiter.reserve("pd:key", rate) == pytest.approx(30.0, abs=1e-6)
    now.at += 30
    assert await limiter.reserve("pd:key", rate) == pytest.approx(1.0, abs=1e-6)


async def test_nothing_asked_nothing_taken(limiters: Limiters) -> None:
    limiter = limiters(Now())
    assert await limiter.try_take([]) == []


# -- Redis against its twin -----------------------------------------------------------


@pytest.mark.integration
async def test_redis_decides_as_the_in_memory_twin_at_every_step(
    redis_client: aioredis.Redis,
) -> None:
    """A seeded random walk over rates, operations and (fractional) instants, including
    steps that land exactly on a slot's refill. (The Redis buckets once stored their
    state with Lua's ``tostring``, 14 digits, and disagreed with the twin at a refill's
    edge in about a third of such walks.)"""
    rng = random.Random(18)
    steps = 0
    for walk in range(100):
        rate = Rate.per_minute(
            rng.choice([0.7, 1, 6.5, 7, 13, 20, 60, 600]), rng.choice([1, 2, 3, 5])
        )
        now = Now(T0 + rng.random())
        redis = RedisRateLimiter(redis_client, _prefix(), clock=now)
        twin = MemoryRateLimiter(now)
        for step in range(30):
            now.at += rng.choice(
                [0.0, rate.interval_s, rate.interval_s / 2, rate.interval_s / 3, rng.random() * 3]
            )
            operation = rng.choice(["take", "take", "reserve", "push"])
            where = f"walk {walk} step {step}: {operation} {rate} at {now.at!r}"
            if operation == "take":
                asks = [(key, rate) for key in rng.choice([["a"], ["a", "b"], ["a", "a", "b"]])]
                assert await redis.try_take(asks) == await twin.try_take(asks), where
            elif operation == "reserve":
                assert await redis.reserve("a", rate) == await twin.reserve("a", rate), where
            else:
                seconds = rng.choice([0.5, 1.0, rate.interval_s])
                await redis.push_back("a", rate, seconds)
                await twin.push_back("a", rate, seconds)
            steps += 1
    assert steps == 100 * 30


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
    prefix, rate = _prefix(), Rate.per_minute(6, 3)
    a_now, b_now = Now(), Now()
    a = RedisRateLimiter(redis_client, prefix, clock=a_now)
    b = RedisRateLimiter(second_client, prefix, clock=b_now)
    assert await _takes(a, "r", rate, 2) == [True, True]
    assert await _takes(b, "r", rate, 2) == [True, False], "B sees what A took"
    # One slot every 10 s, for whichever replica asks first.
    a_now.at = b_now.at = T0 + 10
    assert await _takes(b, "r", rate, 1) == [True]
    assert await _takes(a, "r", rate, 1) == [False]
    # B's clock half a second behind A's: what A took is not given back.
    a_now.at, b_now.at = T0 + 20, T0 + 19.5
    assert await _takes(a, "r", rate, 1) == [True]
    assert await _takes(b, "r", rate, 1) == [False]


@pytest.mark.integration
async def test_a_storm_from_two_replicas_at_once_admits_exactly_the_burst(
    redis_client: aioredis.Redis, second_client: aioredis.Redis
) -> None:
    """Each take is one Lua script, atomic in Redis: concurrent pipelines of two
    replicas, interleaved, never admit more than the burst."""
    prefix, rate, now = _prefix(), Rate(1.0, 7), Now()
    replicas = [RedisRateLimiter(c, prefix, clock=now) for c in (redis_client, second_client)]
    flushes = [replicas[i % 2].try_take([("r", rate)] * 5) for i in range(8)]
    singles = [replicas[i % 2].try_take([("r", rate)]) for i in range(10)]
    decided = await asyncio.gather(*flushes, *singles)
    assert sum(a.admitted for answers in decided for a in answers) == 7
    now.at += 10  # ten seconds later the bucket is full again, for both together
    later = await asyncio.gather(*(r.try_take([("r", rate)] * 5) for r in replicas))
    assert sum(a.admitted for answers in later for a in answers) == 7


@pytest.mark.integration
async def test_keys_expire_a_minute_after_the_bucket_would_be_full_again(
    redis_client: aioredis.Redis,
) -> None:
    """By then forgetting the key changes no decision, and Redis holds no key of a
    receiver that stopped sending."""
    rate, prefix, now = Rate.per_minute(0.5, 3), _prefix(), Now()  # 360 s empty to full
    limiter = RedisRateLimiter(redis_client, prefix, clock=now)
    key = f"{prefix}r"
    expected_ttl = math.ceil(rate.span_s) + 60
    assert await _takes(limiter, "r", rate, 4) == [True, True, True, False]
    assert expected_ttl - 2 <= await redis_client.ttl(key) <= expected_ttl

    # Each slot taken sets the expiry again; a refusal changes nothing, expiry included.
    now.at += 120
    await redis_client.expire(key, 5)
    assert await _takes(limiter, "r", rate, 2) == [True, False]
    assert expected_ttl - 2 <= await redis_client.ttl(key) <= expected_ttl

    # Let Redis expire it itself (sooner than the real 420 s): the bucket starts full.
    await redis_client.pexpire(key, 50)
    await eventually(
        lambda: redis_client.exists(key), until=lambda n: n == 0, what="the key expired"
    )
    assert await _takes(limiter, "r", rate, 4) == [True, True, True, False]
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}*")] == [key.encode()]


@pytest.mark.integration
async def test_on_redis_time_replicas_share_the_pace(
    redis_client: aioredis.Redis, second_client: aioredis.Redis
) -> None:
    """Without a clock the script reads Redis' ``TIME``: the waits two replicas are told
    follow one schedule, whatever their own clocks say."""
    prefix, rate = _prefix(), Rate(10.0, 2)
    one = RedisRateLimiter(redis_client, prefix)
    two = RedisRateLimiter(second_client, prefix)
    waits = [await limiter.reserve("slack:C1", rate) for limiter in (one, two, one, two)]
    # A burst of two, then one slot every 100 ms, counted across both replicas (less
    # the real time the calls themselves took).
    assert waits[:2] == [0.0, 0.0]
    assert 0.05 < waits[2] <= 0.1
    assert 0.15 < waits[3] <= 0.2
    await two.push_back("slack:C1", rate, 5)
    assert 4.9 < await one.reserve("slack:C1", rate) <= 5.0


@pytest.mark.integration
async def test_an_unreachable_redis_fails_as_the_fallback_expects_and_decides_in_process() -> None:
    """The real client's error must be one ``FallbackRateLimiter`` catches, or a Redis
    outage would fail every rate-limited flush and send."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens there
    client = aioredis.Redis(port=port, socket_connect_timeout=2, socket_timeout=2)
    now = Now()
    redis = RedisRateLimiter(client, _prefix())
    switches: list[DecidedBy] = []
    limiter = FallbackRateLimiter(
        redis,
        MemoryRateLimiter(now),
        timeout_s=5,
        retry_after_s=30,
        monotonic=now,
        on_switch=switches.append,
    )
    try:
        with pytest.raises(REDIS_UNAVAILABLE):
            await redis.reserve("slack:C1", Rate(1.0))
        assert await limiter.reserve("slack:C1", Rate(1.0)) == 0.0
        assert await limiter.reserve("slack:C1", Rate(1.0)) == 1.0, "the limit still holds"
        assert switches == [DecidedBy.IN_PROCESS]
    finally:
        await client.aclose()
