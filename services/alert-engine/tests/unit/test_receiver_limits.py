"""Per-receiver limits: parsing the overrides, and which receivers ask the shared rate
limiter. The buckets themselves are ``opsmesh.ratelimit``'s (its contract suite runs on
Redis and the in-memory twin); the flushes they postpone are
``tests/integration/test_rate_limited_flush.py``'s."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from alert_engine.receiver_limits import Limits, ReceiverLimiter, parse_limits
from opsmesh.ratelimit import Admission, Ask, MemoryRateLimiter, Rate
from opsmesh_dev.testing.clock import FakeClock


def test_parse_limits_overrides_and_default() -> None:
    limits = parse_limits(30, 5, " pager=10/20 , slack=60/60,,mail=6 ")
    assert limits.default == Rate.per_minute(30, 5)
    assert limits.per_receiver == {
        "pager": Rate.per_minute(10, 20),
        "slack": Rate(1.0, 60),
        "mail": Rate.per_minute(6, 6),  # burst defaults to the per-minute rate
    }
    assert limits.for_receiver("pager") == Rate.per_minute(10, 20)
    assert limits.for_receiver("other") == Rate(0.5, 5)


def test_parse_limits_fractional_rate_rounds_the_default_burst_up() -> None:
    assert parse_limits(0, 0, "slow=0.5").per_receiver["slow"] == Rate.per_minute(0.5, 1)


def test_parse_limits_without_a_default() -> None:
    limits = parse_limits(0, 10, "")
    assert limits.default is None
    assert limits.per_receiver == {}
    assert limits.for_receiver("any") is None
    # a default burst below 1 is raised to 1
    assert parse_limits(60, 0, "").default == Rate(1.0, 1)


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
        "pager=nan/1",
        "pager=inf/1",
        "pager=inf",
    ],
)
def test_parse_limits_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match="pager"):
        parse_limits(0, 0, spec)


class Recording:
    """The shared limiter's in-memory twin, recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[list[Ask]] = []
        self._buckets = MemoryRateLimiter(FakeClock().now)

    async def try_take(self, asks: Sequence[Ask]) -> list[Admission]:
        self.asked.append(list(asks))
        return await self._buckets.try_take(asks)

    async def reserve(self, key: str, rate: Rate) -> float:
        raise AssertionError("a flush takes now or not at all")

    async def push_back(self, key: str, rate: Rate, seconds: float) -> None:
        raise AssertionError("a flush takes now or not at all")


async def test_each_receiver_takes_from_its_own_bucket_in_order() -> None:
    buckets = Recording()
    big = Rate(1.0, 3)
    limiter = ReceiverLimiter(buckets, Limits(default=Rate(1.0, 1), per_receiver={"big": big}))
    assert await limiter.allow_many(["a", "a", "b", "big", "big", "big", "big"]) == [
        *(True, False),
        True,  # the default limit, but a bucket of its own
        *(True, True, True, False),
    ]
    assert len(buckets.asked) == 1, "one question per flush (one Redis round trip)"


async def test_unlimited_receivers_are_admitted_without_asking() -> None:
    buckets = Recording()
    limiter = ReceiverLimiter(buckets, Limits(per_receiver={"r": Rate(1.0, 1)}))
    assert await limiter.allow_many(["free", "r", "free", "r", "free"]) == [
        True,
        True,
        True,
        False,
        True,
    ]
    assert buckets.asked == [[("r", Rate(1.0, 1))] * 2]
    assert all(await limiter.allow_many(["free"] * 500))
    assert await limiter.allow_many([]) == []
    assert len(buckets.asked) == 1, "a flush of unlimited receivers never waits on Redis"
