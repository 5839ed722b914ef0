"""Per-destination lanes: isolation between destinations.

Each destination (one integration of one receiver) has its own bounded queue, its own
workers (bounded concurrency), its own circuit breaker, and a rate limit shared by the
destinations that share a remote limit (a Slack channel, a PagerDuty routing key).
Retries, backoff, Retry-After waits and open breakers all wait inside the destination's
lane, so a slow, failing or rate-limited destination never delays another.
"""

from __future__ import annotations

import asyncio
import collections
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from notifier.channels.base import Channel, SendResult
from notifier.channels.safe_http import Redactor
from notifier.core.breaker import CircuitBreaker
from notifier.core.retry import FailureKind, RetryPolicy
from opsmesh.clock import Clock, sleep_until_stopped
from opsmesh.events.notifications import NotificationRequested
from opsmesh.logging import get_logger
from opsmesh.ratelimit import Ask, MemoryRateLimiter, Rate, RateLimiter

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Destination:
    receiver: str
    integration: str  # "<kind>-<index>", the delivery log's key part
    channel: Channel
    send_resolved: bool
    concurrency: int
    rate_key: str | None = None  # destinations sharing a remote rate limit share a bucket
    rate_per_s: float | None = None
    burst: float = 1.0
    # Which configuration built it (``ReceiverTable``): a reload that changes the
    # receiver builds a newer one, which gets a new lane.
    generation: int = field(default=0, compare=False)

    @property
    def id(self) -> str:
        return f"{self.receiver}/{self.integration}"

    @property
    def rate_limit(self) -> Ask | None:
        """The bucket it sends through, if it has a rate limit."""
        if self.rate_per_s is None:
            return None
        return self.rate_key or self.id, Rate(self.rate_per_s, self.burst)


@dataclass(slots=True)
class Job:
    request: NotificationRequested
    destination: Destination
    claimed: bool
    started_at: float  # monotonic; the retry deadline counts from here
    attempts: int = 0
    context: Any = None  # the stage's bookkeeping (which record this belongs to)


class LaneStopped(Exception):
    """The service is stopping: the job is left unfinished, so its offset is replayed."""


class Lane:
    def __init__(
        self,
        destination: Destination,
        *,
        process: Callable[[Job], Awaitable[None]],
        max_pending: int,
    ) -> None:
        self.destination = destination
        self._process = process
        self._max_pending = max_pending
        self._queue: collections.deque[Job] = collections.deque()
        self._ready = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._retiring = False
        self.active = 0

    def submit(self, job: Job) -> bool:
        """False when the lane is full: the destination is far behind and the job is shed."""
        if len(self._queue) >= self._max_pending:
            return False
        self._queue.append(job)
        self._ready.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._queue)

    def retire(self) -> None:
        """A reload replaced the destination: the jobs already queued finish with the
        configuration they were queued with, then the workers end."""
        self._retiring = True
        self._ready.set()

    @property
    def finished(self) -> bool:
        return self._retiring and all(worker.done() for worker in self._workers)

    def start(self, stop: asyncio.Event) -> None:
        for index in range(self.destination.concurrency):
            self._workers.append(
                asyncio.create_task(self._work(stop), name=f"lane:{self.destination.id}:{index}")
            )

    async def join(self) -> None:
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _work(self, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if not self._queue:
                    if self._retiring:
                        return
                    self._ready.clear()
                    waiter = asyncio.ensure_future(self._ready.wait())
                    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                job = self._queue.popleft()
                self.active += 1
                try:
                    await self._process(job)
                except LaneStopped:
                    return
                except Exception:
                    # A bug in one job must not kill the lane; the job stays unfinished
                    # (its offset is held) and is replayed after a restart.
                    log.exception("lane job crashed", destination=self.destination.id)
                finally:
                    self.active -= 1
        finally:
            stopper.cancel()


@dataclass(slots=True)
class Sender:
    """One job's attempts: breaker, rate limit, send, classify, back off; until delivered,
    refused for good, or past the deadline."""

    retry: RetryPolicy
    clock: Clock
    stop: asyncio.Event
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    breaker_threshold: int = 5
    breaker_open_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)
    on_attempt: Callable[[Destination, SendResult], None] | None = None
    # The destinations' rate limits: in bootstrap.py Redis' buckets, shared by the replicas
    # (this process' own while Redis fails); None keeps them in this process alone.
    limiter: RateLimiter | None = None
    # Why a receiver is no longer configured (a reload removed it), else None: its jobs
    # stop before their next attempt, to be dead-lettered with that reason.
    removed: Callable[[str], str | None] | None = None
    _limits: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self._limits = self.limiter or MemoryRateLimiter(self.clock.monotonic)

    def breaker(self, destination: Destination) -> CircuitBreaker:
        # Per configuration: a receiver a reload changed (another URL, say) starts
        # closed; rate limits stay shared, being the remote end's.
        key = f"{destination.id}#{destination.generation}"
        found = self.breakers.get(key)
        if found is None:
            found = CircuitBreaker(self.breaker_threshold, self.breaker_open_s)
            self.breakers[key] = found
        return found

    async def _wait(self, seconds: float, deadline: float) -> bool:
        """Wait, unless that passes the deadline (False). Raises when stopping."""
        if seconds <= 0:
            return True
        if self.clock.monotonic() + seconds > deadline:
            return False
        if await sleep_until_stopped(self.stop, seconds):
            raise LaneStopped
        return True

    def _halted(self, job: Job, last: SendResult) -> SendResult | None:
        """Before each attempt: raises when stopping; a job whose receiver a reload
        removed ends here (dead-lettered with the reason), never retried for ever."""
        if self.stop.is_set():
            raise LaneStopped
        gone = self.removed(job.destination.receiver) if self.removed is not None else None
        if gone is None:
            return None
        return _removed(last if job.attempts else None, gone)

    async def send(self, job: Job) -> SendResult:
        destination = job.destination
        breaker = self.breaker(destination)
        limit = destination.rate_limit
        deadline = job.started_at + self.retry.deadline_s
        last = SendResult(ok=False, failure=FailureKind.NETWORK, error="not attempted")
        while True:
            halted = self._halted(job, last)
            if halted is not None:
                return halted
            hold = breaker.wait_s(self.clock.monotonic())
            if hold > 0:
                if not await self._wait(hold, deadline):
                    return _past_deadline(last, "circuit open")
                continue
            if limit is not None and not await self._wait(
                await self._limits.reserve(*limit), deadline
            ):
                return _past_deadline(last, "rate limit")
            job.attempts += 1
            outcome = await _send_once(destination, job.request)
            if self.on_attempt is not None:
                self.on_attempt(destination, outcome)
            if outcome.ok:
                breaker.record_success()
                return outcome
            last = outcome
            failure = outcome.failure
            if failure is None or not failure.retryable:
                # The destination answered; a bad request says nothing about its health.
                breaker.record_success()
                return outcome
            if failure is FailureKind.RATE_LIMITED:
                if limit is not None and outcome.retry_after_s:
                    await self._limits.push_back(*limit, outcome.retry_after_s)
            else:
                breaker.record_failure(self.clock.monotonic())
            delay = self.retry.delay(job.attempts, outcome.retry_after_s, self.rng)
            if not await self._wait(delay, deadline):
                return _past_deadline(outcome, "deadline")
            log.info(
                "delivery failed; retrying",
                destination=destination.id,
                attempt=job.attempts,
                error=outcome.error,
                delay_s=round(delay, 3),
            )


_redact = Redactor()


async def _send_once(destination: Destination, request: NotificationRequested) -> SendResult:
    """One attempt; a channel that raises is classified here, never left to crash the
    lane (which would hold the request's offset for good)."""
    try:
        return await destination.channel.send(request)
    except (psycopg.OperationalError, OSError, TimeoutError) as exc:
        # The database behind a channel (Slack message refs) or the network: transient.
        return SendResult(
            ok=False, failure=FailureKind.NETWORK, error=_redact(f"{type(exc).__name__}: {exc}")
        )
    except Exception as exc:
        # Deterministic as far as anyone knows: the same request would fail the same way.
        error = _redact(f"{type(exc).__name__}: {exc}")
        # Where, not the traceback's text: chained messages may quote a server's answer
        # (credentials it echoed back) that only the channel knew to redact.
        frames = traceback.extract_tb(exc.__traceback__)
        where = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[-4:]]
        log.error(
            "channel raised; dead-lettering", destination=destination.id, error=error, at=where
        )
        return SendResult(ok=False, failure=FailureKind.INTERNAL, error=error)


def _removed(last: SendResult | None, why: str) -> SendResult:
    """A job whose receiver a reload removed: dead-lettered, never retried for ever."""
    if last is None:
        return SendResult(ok=False, failure=FailureKind.NOT_CONFIGURED, error=f"{why}; not sent")
    return SendResult(
        ok=False,
        status_code=last.status_code,
        failure=FailureKind.NOT_CONFIGURED,
        error=f"{why}; not sent again (last error: {last.failure}: {last.error})",
    )


def _past_deadline(last: SendResult, why: str) -> SendResult:
    return SendResult(
        ok=False,
        status_code=last.status_code,
        failure=last.failure or FailureKind.NETWORK,
        error=f"retry deadline passed ({why}); last error: {last.error}",
    )
