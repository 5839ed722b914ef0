"""Per-receiver limits: parsing the overrides, and the fall-back to the in-process
buckets while Redis does not answer. The buckets' own contract is one suite run on both
implementations: ``tests/integration/test_token_buckets.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from alert_engine.ratelimit import (
    DecidedBy,
    FallbackBuckets,
    Limit,
    Limits,
    MemoryTokenBuckets,
    parse_limits,
)
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_000.0


def test_parse_limits_overrides_and_default() -> None:
    limits = parse_limits(30, 5, " pager=10/20 , slack=60/60,,mail=6 ")
    assert limits.default == Limit(30, 5)
    assert limits.per_receiver == {
        "pager": Limit(10, 20),
        "slack": Limit(60, 60),
        "mail": Limit(6, 6),  # burst defaults to the per-minute rate
    }
    assert limits.for_receiver("pager") == Limit(10, 20)
    assert limits.for_receiver("other") == Limit(30, 5)
    assert Limit(30, 5).per_second == 0.5


def test_parse_limits_fractional_rate_rounds_the_default_burst_up() -> None:
    assert parse_limits(0, 0, "slow=0.5").per_receiver["slow"] == Limit(0.5, 1)


def test_parse_limits_without_a_default() -> None:
    limits = parse_limits(0, 10, "")
    assert limits.default is None
    assert limits.per_receiver == {}
    assert limits.for_receiver("any") is None
    # a default burst below 1 is raised to 1
    assert parse_limits(60, 0, "").default == Limit(60, 1)


@pytest.mark.parametrize(
    "spec",
    [
        "pager",
        "pager=",
        "pager=x/1",
        "pager=10/y",
        "pager=10/1.5",
        "pager=0/1",
        "pager=-1/1",
        "pager=10/0",
    ],
)
def test_parse_limits_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match="pager"):
        parse_limits(0, 0, spec)


class _Primary:
    """A stand-in for Redis: answers, fails, never answers, or has a bug, as told."""

    def __init__(self) -> None:
        self.mode = "up"
        self.calls = 0

    async def allow(self, receiver: str, now: float) -> bool:
        return (await self.allow_many([receiver], now))[0]

    async def allow_many(self, receivers: Sequence[str], now: float) -> list[bool]:
        self.calls += 1
        if self.mode == "error":
            raise RedisConnectionError("Connection refused")
        if self.mode == "hang":
            await asyncio.Event().wait()
        if self.mode == "bug":
            raise KeyError("a bug, not an outage")
        return [True] * len(receivers)


def _fallback_buckets(
    clock: FakeClock,
) -> tuple[FallbackBuckets, _Primary, list[int], list[DecidedBy]]:
    primary = _Primary()
    told: list[int] = []
    switches: list[DecidedBy] = []
    limits = Limits(per_receiver={"r": Limit(per_minute=60, burst=1)})
    buckets = FallbackBuckets(
        primary,
        MemoryTokenBuckets(limits),
        limits,
        timeout_s=0.05,
        retry_after_s=30,
        monotonic=clock.monotonic,
        on_fallback=told.append,
        on_switch=switches.append,
    )
    return buckets, primary, told, switches


@pytest.mark.parametrize("failure", ["error", "hang"])
async def test_without_redis_the_same_buckets_decide_in_process(failure: str) -> None:
    clock = FakeClock(T0)
    buckets, primary, told, switches = _fallback_buckets(clock)
    assert await buckets.allow_many(["r"], T0) == [True]  # Redis answered
    assert switches == []
    primary.mode = failure
    # Redis failing or silent: the in-process bucket (burst 1) decides, and keeps deciding
    # without asking Redis again until the retry time.
    assert await buckets.allow_many(["r", "r"], T0) == [True, False]
    assert await buckets.allow_many(["r"], T0 + 0.5) == [False]
    assert primary.calls == 2
    assert told == [2, 1]
    assert switches == [DecidedBy.IN_PROCESS], "told once, not per decision"
    clock.advance(30)
    # (the buckets' time is the caller's; only the retry runs on the monotonic clock)
    assert await buckets.allow_many(["r"], T0 + 0.5) == [False], "still down: in process"
    assert primary.calls == 3
    assert switches == [DecidedBy.IN_PROCESS]
    primary.mode = "up"
    clock.advance(30)
    assert await buckets.allow_many(["r"], T0 + 60) == [True]
    assert primary.calls == 4, "asked again after the retry time"
    assert told == [2, 1, 1]
    assert switches == [DecidedBy.IN_PROCESS, DecidedBy.REDIS]


async def test_only_redis_failures_fall_back_a_bug_propagates() -> None:
    clock = FakeClock(T0)
    buckets, primary, told, switches = _fallback_buckets(clock)
    primary.mode = "bug"
    with pytest.raises(KeyError, match="a bug"):
        await buckets.allow_many(["r"], T0)
    assert told == []
    assert switches == []
    primary.mode = "up"
    assert await buckets.allow_many(["r"], T0) == [True], "Redis asked at once, not held off"
    assert primary.calls == 2


async def test_only_limited_receivers_ask_redis_so_only_its_answer_ends_a_fallback() -> None:
    """A flush of unlimited receivers needs no bucket: it must neither ask Redis nor, by
    answering without it, claim Redis is back (which made the gauge and the log flap)."""
    clock = FakeClock(T0)
    buckets, primary, told, switches = _fallback_buckets(clock)
    primary.mode = "error"
    assert await buckets.allow_many(["r", "free"], T0) == [True, True]
    assert told == [1], "one decision made in process: the limited receiver's"
    clock.advance(30)
    assert await buckets.allow_many(["free", "free"], T0 + 1) == [True, True]
    assert await buckets.allow_many([], T0 + 1) == []
    assert primary.calls == 1
    assert switches == [DecidedBy.IN_PROCESS], "not back on Redis without its answer"
    assert await buckets.allow_many(["free", "r", "r"], T0 + 1) == [True, True, False]
    assert primary.calls == 2, "a limited receiver asks Redis again after the retry time"
    assert told == [1, 2]
    assert switches == [DecidedBy.IN_PROCESS]
