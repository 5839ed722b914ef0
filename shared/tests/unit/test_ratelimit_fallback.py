"""``FallbackRateLimiter``: Redis' buckets while it answers, this process' own while it
fails or is silent, and back; only Redis' failures fall back. Simulated time: the
buckets and the retry both run on a ``FakeClock``."""

from __future__ import annotations

import pytest

from opsmesh.ratelimit import Admission, DecidedBy, FallbackRateLimiter, MemoryRateLimiter, Rate
from opsmesh_dev.testing.clock import FakeClock
from opsmesh_dev.testing.ratelimit import FlakyRateLimiter, Mode

ONE_A_SECOND = Rate(1.0, 1)
R = ("r", ONE_A_SECOND)


class Fallback:
    """The limiter under test, Redis' stand-in, and what the limiter told."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.redis = FlakyRateLimiter(self.clock.now)
        self.told: list[int] = []
        self.switches: list[DecidedBy] = []
        self.limiter = FallbackRateLimiter(
            self.redis,
            MemoryRateLimiter(self.clock.now),
            timeout_s=0.05,
            retry_after_s=30,
            monotonic=self.clock.monotonic,
            on_fallback=self.told.append,
            on_switch=self.switches.append,
        )

    async def takes(self, *asks: tuple[str, Rate]) -> list[bool]:
        return [a.admitted for a in await self.limiter.try_take(asks)]


@pytest.mark.parametrize("failure", [Mode.REFUSED, Mode.SILENT])
async def test_without_redis_the_same_buckets_decide_in_process(failure: Mode) -> None:
    f = Fallback()
    assert await f.takes(R) == [True]  # Redis answered: its bucket is empty now
    assert f.switches == []
    assert f.limiter.decided_by is DecidedBy.REDIS
    f.redis.mode = failure
    # Redis failing or silent: the in-process bucket (burst 1, which never saw Redis'
    # take) decides, and keeps deciding without asking Redis until the retry time.
    assert await f.takes(R, R) == [True, False]
    f.clock.advance(0.5)
    assert await f.takes(R) == [False]
    assert f.redis.calls == 2
    assert f.told == [2, 1]
    assert f.switches == [DecidedBy.IN_PROCESS], "told once, not per decision"
    assert f.limiter.decided_by is DecidedBy.IN_PROCESS
    f.clock.advance(29.5)
    assert await f.takes(R, R) == [True, False], "still down: in process"
    assert f.redis.calls == 3, "asked again after the retry time"
    assert f.switches == [DecidedBy.IN_PROCESS]
    f.redis.mode = Mode.UP
    f.clock.advance(30)
    assert await f.takes(R, R) == [True, False], "Redis' bucket, refilled"
    assert f.redis.calls == 4
    assert f.told == [2, 1, 2]
    assert f.switches == [DecidedBy.IN_PROCESS, DecidedBy.REDIS]
    assert f.limiter.decided_by is DecidedBy.REDIS


async def test_reserve_falls_back_alike() -> None:
    f = Fallback()
    f.redis.mode = Mode.REFUSED
    assert await f.limiter.reserve(*R) == 0.0
    assert await f.limiter.reserve(*R) == 1.0, "the limit holds in process"
    assert f.told == [1, 1]
    assert f.switches == [DecidedBy.IN_PROCESS]


async def test_a_push_back_holds_in_process_too_when_redis_fails_next() -> None:
    f = Fallback()
    await f.limiter.push_back("r", ONE_A_SECOND, 30)
    assert f.redis.calls == 1
    f.redis.mode = Mode.REFUSED
    assert await f.limiter.reserve(*R) == 30.0, "Retry-After still holds"
    assert f.told == [1], "a push back is no decision: not counted"


async def test_only_redis_failures_fall_back_a_bug_propagates() -> None:
    f = Fallback()
    f.redis.mode = Mode.BUG
    with pytest.raises(KeyError, match="a bug"):
        await f.limiter.try_take([R])
    with pytest.raises(KeyError, match="a bug"):
        await f.limiter.reserve(*R)
    assert f.told == []
    assert f.switches == []
    f.redis.mode = Mode.UP
    assert await f.limiter.try_take([R]) == [Admission(True, 0.0)], "asked at once"
    assert f.redis.calls == 3


async def test_nothing_asked_neither_asks_redis_nor_ends_a_fallback() -> None:
    """A flush with no limited receiver needs no bucket: it must neither ask Redis nor,
    by answering without it, claim Redis is back."""
    f = Fallback()
    f.redis.mode = Mode.REFUSED
    assert await f.takes(R) == [True]
    f.redis.mode = Mode.UP
    f.clock.advance(30)
    assert await f.limiter.try_take([]) == []
    assert f.redis.calls == 1
    assert f.switches == [DecidedBy.IN_PROCESS], "not back on Redis without its answer"
