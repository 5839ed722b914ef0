"""One provider's purge, tried until it succeeds, is refused, or its retries run out.

Transient ``PurgeError``s (and the network's own errors) are retried with the notifier's
backoff (``RetryPolicy``: full jitter, doubling to a ceiling) within its deadline, behind
the provider's circuit breaker; a deterministic one ends the purge at once. Any other
exception a provider raises is deterministic as far as anyone knows: the purge is
dead-lettered with it, never left to crash the worker. Time and waiting are injected, so
this is tested in simulated time.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from notifier.core.breaker import CircuitBreaker
from notifier.core.purge_plan import PurgeFailure
from notifier.core.retry import RetryPolicy
from opsmesh_client.cdn.provider import CdnProvider, PurgeError, PurgeRequest

MAX_ERROR = 2000


class PurgeStopped(Exception):
    """The service is stopping: the purge is left unfinished and replayed after restart."""


@dataclass(frozen=True, slots=True)
class Attempted:
    ok: bool
    attempts: int
    failure: PurgeFailure | None = None
    error: str | None = None


# Waits ``seconds``; True when the service is stopping instead.
Sleep = Callable[[float], Awaitable[bool]]


def _classify(exc: Exception) -> tuple[bool, str]:
    """(transient, reason) of what a provider raised."""
    if isinstance(exc, PurgeError):
        return exc.transient, exc.reason
    if isinstance(exc, OSError | TimeoutError):
        return True, f"{type(exc).__name__}: {exc}"
    return False, f"{type(exc).__name__}: {exc}"


async def purge_with_retries(
    provider: CdnProvider,
    request: PurgeRequest,
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    monotonic: Callable[[], float],
    sleep: Sleep,
    rng: random.Random,
) -> Attempted:
    deadline = monotonic() + policy.deadline_s
    attempts = 0
    last = "not attempted"
    while True:
        hold = breaker.wait_s(monotonic())
        if hold > 0:
            if monotonic() + hold > deadline:
                return _exhausted(attempts, f"circuit open; last error: {last}")
            if await sleep(hold):
                raise PurgeStopped
            continue
        attempts += 1
        try:
            await provider.purge(request)
        except Exception as exc:
            transient, reason = _classify(exc)
            last = reason[:MAX_ERROR]
            if not transient:
                # The provider answered: a refused request says nothing about its health.
                breaker.record_success()
                return Attempted(False, attempts, PurgeFailure.DETERMINISTIC, last)
            breaker.record_failure(monotonic())
            delay = policy.delay(attempts, None, rng)
            if monotonic() + delay > deadline:
                return _exhausted(attempts, f"retry deadline passed; last error: {last}")
            if await sleep(delay):
                raise PurgeStopped from None
            continue
        breaker.record_success()
        return Attempted(True, attempts)


def _exhausted(attempts: int, error: str) -> Attempted:
    return Attempted(False, attempts, PurgeFailure.RETRIES_EXHAUSTED, error)
