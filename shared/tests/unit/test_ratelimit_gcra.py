"""The GCRA arithmetic every rate limiter shares, and the in-memory twin's housekeeping,
in simulated time (the caller passes ``now``). What a limiter keeps per bucket is the
TAT these functions return."""

from __future__ import annotations

import random

import pytest

from opsmesh.ratelimit import Admission, MemoryRateLimiter, Rate, gcra
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_000.0


class Bucket:
    """One bucket's state threaded through the pure steps, as a limiter keeps it."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.tat: float | None = None

    def take(self, now: float) -> bool:
        admission, self.tat = gcra.try_take(self.tat, now, self.rate)
        return admission.admitted

    def takes(self, now: float, n: int) -> list[bool]:
        return [self.take(now) for _ in range(n)]

    def reserve(self, now: float) -> float:
        wait, self.tat = gcra.reserve(self.tat, now, self.rate)
        return wait

    def push_back(self, now: float, seconds: float) -> None:
        self.tat = gcra.push_back(self.tat, now, self.rate, seconds)


def test_a_rate_is_positive_with_a_burst_of_at_least_one() -> None:
    assert Rate.per_minute(30, 5) == Rate(0.5, 5)
    assert Rate(4.0, 2).interval_s == 0.25
    assert Rate(4.0, 2).span_s == 0.5
    for per_second, burst in [(0, 1), (-1, 1), (float("inf"), 1), (float("nan"), 1), (1, 0.5)]:
        with pytest.raises(ValueError, match=r"rate|burst"):
            Rate(per_second, burst)


# -- try to take now ----------------------------------------------------------------------


def test_admits_exactly_the_burst_then_says_when_a_slot_frees_up() -> None:
    bucket = Bucket(Rate(1.0, 5))
    assert bucket.takes(T0, 5) == [True] * 5
    admission, tat = gcra.try_take(bucket.tat, T0 + 0.25, bucket.rate)
    assert admission == Admission(False, 0.75)
    assert tat == bucket.tat, "a refusal changes nothing"


def test_refills_at_the_rate_up_to_the_burst() -> None:
    # 6 per minute: one slot every 10 s, up to the burst of 2.
    bucket = Bucket(Rate.per_minute(6, 2))
    assert bucket.takes(T0, 3) == [True, True, False]
    assert not bucket.take(T0 + 9.9)
    assert bucket.take(T0 + 10)
    assert not bucket.take(T0 + 10)
    # Refused tries in between cost nothing: four steps of 2.5 s make the next slot.
    for step in (12.5, 15, 17.5):
        assert not bucket.take(T0 + step)
    assert bucket.take(T0 + 20)
    # A long pause refills only up to the burst.
    assert bucket.takes(T0 + 3600, 3) == [True, True, False]


def test_a_clock_behind_the_last_take_gets_nothing_back() -> None:
    """Another replica's clock half a second behind: what was taken stays taken."""
    bucket = Bucket(Rate(1.0, 1))
    assert bucket.take(T0 + 100)
    assert not bucket.take(T0)
    assert not bucket.take(T0 + 100.5)
    assert bucket.take(T0 + 101)


def test_takes_decide_as_a_token_bucket_would() -> None:
    """GCRA is a token bucket kept as one number: a seeded walk against the (tokens,
    time) arithmetic the alert-engine kept before, on rates and instants exact in binary
    so neither rounds. Time only goes forward here (a clock behind keeps what GCRA's
    TAT holds, where the token bucket compared counts)."""
    rng = random.Random(16)
    for _ in range(200):
        per_second = rng.choice([0.125, 0.25, 0.5, 1.0, 2.0, 8.0])
        burst = rng.choice([1, 2, 3, 5])
        bucket = Bucket(Rate(per_second, burst))
        tokens, at = float(burst), T0
        now = T0
        for _ in range(40):
            now += rng.choice([0.0, 0.0, 0.125, 0.5, 1.0, 4.0, 16.0])
            tokens = min(burst, tokens + (now - at) * per_second)
            at = now
            expected = tokens >= 1
            if expected:
                tokens -= 1
            assert bucket.take(now) is expected


# -- reserve and wait -----------------------------------------------------------------


def test_reserve_allows_the_burst_then_spaces_to_the_rate() -> None:
    bucket = Bucket(Rate(1.0, 2))
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(1.0)
    assert bucket.reserve(0.0) == pytest.approx(2.0), "reservations queue in order"
    assert bucket.reserve(10.0) == 0.0, "refilled, up to the burst"
    assert bucket.reserve(10.0) == 0.0
    assert bucket.reserve(10.0) == pytest.approx(1.0)


def test_a_reserved_slot_is_gone_for_a_take() -> None:
    bucket = Bucket(Rate(1.0, 1))
    assert bucket.reserve(T0) == 0.0
    assert bucket.reserve(T0) == pytest.approx(1.0)
    assert not bucket.take(T0 + 1.5), "the reservation holds the slot at T0 + 1"
    assert bucket.take(T0 + 2)


def test_push_back_holds_every_slot_until_retry_after() -> None:
    bucket = Bucket(Rate(1.0, 5))
    bucket.push_back(0.0, 30.0)
    assert bucket.reserve(0.0) == pytest.approx(30.0), "the first slot at Retry-After"
    assert bucket.reserve(30.0) == pytest.approx(1.0), "empty then: the next an interval on"
    assert not bucket.take(30.5)


def test_push_back_twice_changes_nothing_and_never_shortens_a_wait() -> None:
    once, twice = Bucket(Rate(2.0, 3)), Bucket(Rate(2.0, 3))
    once.push_back(T0, 5)
    twice.push_back(T0, 5)
    twice.push_back(T0, 5)
    assert once.tat == twice.tat
    twice.push_back(T0, 1)
    assert once.tat == twice.tat, "a shorter Retry-After does not free slots sooner"


def test_state_expires_once_the_bucket_is_full_again() -> None:
    bucket = Bucket(Rate.per_minute(0.5, 3))  # 120 s a slot: 360 s from empty to full
    assert bucket.takes(T0, 3) == [True] * 3
    assert bucket.tat is not None
    assert gcra.expires_in(bucket.tat, T0) == 360
    assert gcra.expires_in(bucket.tat, T0 + 400) == 0
    # Forgotten once expired, the bucket decides as if it had been kept.
    kept = Bucket(bucket.rate)
    kept.tat = bucket.tat
    assert kept.takes(T0 + 360, 4) == Bucket(bucket.rate).takes(T0 + 360, 4)


async def test_the_in_memory_buckets_forget_full_ones_as_redis_expires_keys() -> None:
    """Keys (destinations, receivers) come and go: a bucket full again is dropped, so
    memory follows the buckets in use, and a forgotten one decides as a kept one would."""
    clock = FakeClock(T0)
    limiter = MemoryRateLimiter(clock.now)
    rate = Rate(1.0, 2)  # full again 1 s after a take
    most = 0
    for i in range(20_000):  # a new key every millisecond: about 1000 in use at once
        await limiter.try_take([(f"key-{i}", rate)])
        clock.advance(0.001)
        most = max(most, len(limiter._tats))
    assert most <= 2100, "never more than twice the buckets in use, plus one sweep's"
    assert [a.admitted for a in await limiter.try_take([("key-7", rate)] * 3)] == [
        True,
        True,
        False,
    ]
