"""Lanes and the sender with in-memory channels: retries, deadline, breaker, rate limit,
and isolation (a stalled destination does not hold up another)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import pytest

from notifier.channels.base import SendResult
from notifier.core.retry import FailureKind, RetryPolicy
from notifier.pipeline.lanes import Destination, Job, Lane, Sender
from notifier.samples import sample_request
from opsmesh.clock import SystemClock
from opsmesh.events.notifications import NotificationRequested
from opsmesh.ratelimit import DecidedBy, FallbackRateLimiter, MemoryRateLimiter, Rate
from opsmesh_dev.testing.clock import FakeClock
from opsmesh_dev.testing.ratelimit import FlakyRateLimiter, Mode


@dataclass
class ScriptedChannel:
    """Answers from a script, then OK; optionally blocks until released."""

    name: str
    script: list[SendResult] = field(default_factory=list)
    gate: asyncio.Event | None = None
    sent: list[str] = field(default_factory=list)

    async def send(self, request: NotificationRequested) -> SendResult:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(request.idempotency_key)
        return self.script.pop(0) if self.script else SendResult(ok=True, status_code=200)


def destination(channel: ScriptedChannel, **kw: object) -> Destination:
    return Destination(
        receiver="r",
        integration=channel.name,
        channel=channel,
        send_resolved=True,
        concurrency=int(kw.pop("concurrency", 2)),  # type: ignore[call-overload]
        **kw,  # type: ignore[arg-type]
    )


def sender(deadline_s: float = 5.0, **kw: object) -> Sender:
    return Sender(
        retry=RetryPolicy(initial_s=0.01, max_s=0.02, deadline_s=deadline_s),
        clock=SystemClock(),
        stop=asyncio.Event(),
        rng=random.Random(1),
        **kw,  # type: ignore[arg-type]
    )


def job(dest: Destination, key: str = "k") -> Job:
    return Job(sample_request("r", key=key), dest, True, SystemClock().monotonic())


FAIL_503 = SendResult(ok=False, status_code=503, failure=FailureKind.SERVER_ERROR, error="503")


async def test_retries_transient_failures_until_delivered() -> None:
    channel = ScriptedChannel("a", [FAIL_503, FAIL_503])
    the_job = job(destination(channel))
    result = await sender().send(the_job)
    assert result.ok
    assert the_job.attempts == 3


async def test_permanent_failures_are_not_retried() -> None:
    bad = SendResult(ok=False, status_code=400, failure=FailureKind.CLIENT_ERROR, error="400")
    channel = ScriptedChannel("a", [bad])
    the_job = job(destination(channel))
    result = await sender().send(the_job)
    assert result.failure is FailureKind.CLIENT_ERROR
    assert the_job.attempts == 1


async def test_gives_up_at_the_deadline() -> None:
    channel = ScriptedChannel("a", [FAIL_503] * 10_000)
    the_job = job(destination(channel))
    result = await sender(deadline_s=0.2).send(the_job)
    assert not result.ok
    assert "deadline" in (result.error or "")
    assert the_job.attempts > 1


async def test_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    limited = SendResult(
        ok=False, status_code=429, failure=FailureKind.RATE_LIMITED, retry_after_s=60.0
    )
    channel = ScriptedChannel("a", [limited])
    the_job = job(destination(channel))
    result = await sender(deadline_s=5.0).send(the_job)
    assert result.failure is FailureKind.RATE_LIMITED
    assert the_job.attempts == 1  # did not sleep 60 s, did not hammer either


async def test_breaker_opens_and_its_wait_counts_against_the_deadline() -> None:
    channel = ScriptedChannel("a", [FAIL_503] * 100)
    s = sender(deadline_s=0.5, breaker_threshold=2, breaker_open_s=30.0)
    the_job = job(destination(channel))
    result = await s.send(the_job)
    assert not result.ok
    assert "circuit open" in (result.error or "")
    assert the_job.attempts == 2  # the breaker stopped the hammering


async def test_rate_limit_spaces_sends_on_a_shared_key() -> None:
    one = ScriptedChannel("a")
    two = ScriptedChannel("b")
    s = sender()
    d1 = destination(one, rate_key="slack:C1", rate_per_s=20.0, burst=1.0)
    d2 = destination(two, rate_key="slack:C1", rate_per_s=20.0, burst=1.0)
    assert d1.rate_limit == d2.rate_limit == ("slack:C1", Rate(20.0, 1.0)), "one bucket"
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(s.send(job(d, str(i))) for i, d in enumerate([d1, d2, d1, d2])))
    # Four sends at 20/s with a burst of one take at least three intervals.
    assert asyncio.get_running_loop().time() - started >= 0.14


async def test_a_stalled_lane_does_not_delay_another() -> None:
    stalled = ScriptedChannel("stalled", gate=asyncio.Event())
    healthy = ScriptedChannel("healthy")
    s = sender()
    finished: asyncio.Queue[str] = asyncio.Queue()

    async def process(j: Job) -> None:
        await s.send(j)
        await finished.put(j.request.idempotency_key)

    lanes = [
        Lane(destination(stalled), process=process, max_pending=100),
        Lane(destination(healthy), process=process, max_pending=100),
    ]
    for lane in lanes:
        lane.start(s.stop)
    for i in range(5):
        assert lanes[0].submit(job(lanes[0].destination, f"s{i}"))
    for i in range(20):
        assert lanes[1].submit(job(lanes[1].destination, f"h{i}"))
    done = [await asyncio.wait_for(finished.get(), timeout=5) for _ in range(20)]
    assert sorted(done) == sorted(f"h{i}" for i in range(20))
    assert stalled.sent == []
    assert lanes[0].pending == 3  # two workers are blocked in send, three queued
    stalled.gate.set()  # type: ignore[union-attr]
    rest = [await asyncio.wait_for(finished.get(), timeout=5) for _ in range(5)]
    assert sorted(rest) == [f"s{i}" for i in range(5)]
    s.stop.set()
    await asyncio.gather(*(lane.join() for lane in lanes))


async def test_a_full_lane_refuses_more() -> None:
    lane = Lane(
        destination(ScriptedChannel("a")), process=lambda j: asyncio.sleep(0), max_pending=1
    )
    assert lane.submit(job(lane.destination, "1"))
    assert not lane.submit(job(lane.destination, "2"))


@dataclass
class RaisingChannel:
    name: str
    error: Exception
    calls: int = 0

    async def send(self, request: NotificationRequested) -> SendResult:
        self.calls += 1
        raise self.error


async def test_a_channel_that_raises_is_a_failure_not_a_crashed_lane() -> None:
    channel = RaisingChannel("boom", ValueError("year 10000 is out of range"))
    dest = Destination(
        receiver="r", integration="boom", channel=channel, send_resolved=True, concurrency=1
    )
    result = await sender().send(job(dest))
    assert result.failure is FailureKind.INTERNAL
    assert not result.failure.retryable  # the same request fails the same way: dead-letter
    assert result.error == "ValueError: year 10000 is out of range"
    assert channel.calls == 1


async def test_a_channel_raising_a_connection_error_is_retried() -> None:
    channel = RaisingChannel("net", ConnectionResetError("reset by http://h/secret-path"))
    dest = Destination(
        receiver="r", integration="net", channel=channel, send_resolved=True, concurrency=1
    )
    result = await sender(deadline_s=0.2).send(job(dest))
    assert result.failure is FailureKind.NETWORK
    assert channel.calls >= 2
    assert result.error is not None
    assert "secret-path" not in result.error


async def test_a_retry_after_holds_the_destinations_bucket() -> None:
    """A 429's Retry-After is pushed onto the destination's bucket (Redis' in app.py):
    every sender through it waits, not only the job that was refused."""
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock.monotonic)
    limited = SendResult(
        ok=False, status_code=429, failure=FailureKind.RATE_LIMITED, retry_after_s=0.05
    )
    channel = ScriptedChannel("a", [limited])
    dest = destination(channel, rate_key="pd:key", rate_per_s=1000.0, burst=5.0)
    result = await sender(limiter=limiter).send(job(dest))
    assert result.ok
    assert channel.sent == ["k", "k"]
    # The bucket's clock stood still: the retry took the slot at Retry-After, and the
    # next sender's is an interval after it.
    assert await limiter.reserve("pd:key", Rate(1000.0, 5.0)) == pytest.approx(0.051)


async def test_a_redis_outage_keeps_the_limit_in_process() -> None:
    """With Redis refusing, a send still goes out, paced by this process' bucket."""
    clock = FakeClock()
    redis = FlakyRateLimiter(clock.monotonic)
    redis.mode = Mode.REFUSED
    limiter = FallbackRateLimiter(
        redis,
        MemoryRateLimiter(clock.monotonic),
        timeout_s=1,
        retry_after_s=30,
        monotonic=clock.monotonic,
    )
    channel = ScriptedChannel("a")
    dest = destination(channel, rate_key="slack:C1", rate_per_s=1.0, burst=1.0)
    s = sender(limiter=limiter)
    assert (await s.send(job(dest, "1"))).ok
    assert limiter.decided_by is DecidedBy.IN_PROCESS
    # The next send's slot is a second away on the (still) clock: past a short deadline.
    late = await sender(deadline_s=0.5, limiter=limiter).send(job(dest, "2"))
    assert "rate limit" in (late.error or "")
    assert channel.sent == ["1"]
