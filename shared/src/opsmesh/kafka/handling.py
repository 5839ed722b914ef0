"""One batch through the handler: retry what is transient, isolate what is not.

``HandlerRunner.run`` calls ``handle`` until the batch is done:

- a **transient** failure (``opsmesh.kafka.failures``) retries the same records with
  exponential backoff (``retry_initial_s`` doubling up to ``retry_max_s``);
- a **deterministic** failure of a call with records bisects them: first an empty call
  (the handler's time-driven work alone; if even that fails, the fault is not in the
  records), then the batch again and, while a part fails, each of its halves in order,
  down to single records. A record that fails deterministically on its own is poison: it
  is returned to be dead-lettered (``handler_failed``, with the exception's class and
  message) and the rest of the batch is handled;
- a deterministic failure of a call *without* records cannot be pinned on any record: it
  is retried with backoff like a transient one.

Every failure is counted in a ``StallWatch``; a call that returns (or a poison record
set aside) is progress. Without progress for ``give_up_after_s`` the runner raises
``ConsumerStalled``. A stop ends any wait at once and returns ``None``: nothing of the
batch may be committed then (the handler may have done part of it; it replays).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from opsmesh.clock import Clock, sleep_until_stopped
from opsmesh.events.base import Event
from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh.kafka.failures import FailureClass, classifier_for, describe
from opsmesh.kafka.handler import BatchHandler, BatchResult, Received, Rejection
from opsmesh.kafka.stall import Failure, StallWatch
from opsmesh.logging import get_logger

E = TypeVar("E", bound=Event)
log = get_logger(__name__)

# ``wait(stop, seconds)``: True when ``stop`` was set before the time ran out.
Waiter = Callable[[asyncio.Event, float], Awaitable[bool]]
# Told of every failed call: its class, the exception and how many records it had.
FailureObserver = Callable[[FailureClass, BaseException, int], None]


class ConsumerStalled(RuntimeError):
    """The handler made no progress for ``give_up_after_s``: the worker gives up."""


@dataclass(slots=True)
class Handled:
    result: BatchResult  # the calls that returned, merged in order
    poison: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Deterministic:
    exc: BaseException


class _Stopped:
    pass


_STOPPED = _Stopped()
_Outcome = BatchResult | _Deterministic | _Stopped


def _ignore(failure_class: FailureClass, exc: BaseException, records: int) -> None:
    return None


class HandlerRunner(Generic[E]):
    def __init__(
        self,
        handler: BatchHandler[E],
        *,
        watch: StallWatch,
        clock: Clock,
        retry_initial_s: float,
        retry_max_s: float,
        wait: Waiter = sleep_until_stopped,
        observe: FailureObserver = _ignore,
    ) -> None:
        self._handler = handler
        self._classify = classifier_for(handler)
        self._watch = watch
        self._clock = clock
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._wait = wait
        self._observe = observe

    async def run(self, batch: Sequence[Received[E]], stop: asyncio.Event) -> Handled | None:
        first = await self._attempt(batch, stop)
        if isinstance(first, _Stopped):
            return None
        if isinstance(first, BatchResult):
            return Handled(first)
        log.warning(
            "handler failed deterministically; isolating the records that fail",
            records=len(batch),
            error=describe(first.exc, 500),
        )
        # First the handler's time-driven work alone (an empty call is retried until it
        # returns): what still fails with records after that is theirs.
        probe = await self._attempt((), stop)
        if isinstance(probe, _Stopped):
            return None
        assert isinstance(probe, BatchResult), "an empty call is never left deterministic"
        handled = Handled(BatchResult())
        _merge(handled.result, probe)
        if not await self._isolate(batch, handled, stop):
            return None
        return handled

    async def _isolate(
        self, part: Sequence[Received[E]], handled: Handled, stop: asyncio.Event
    ) -> bool:
        """Handle ``part``, bisecting it while it fails; False when stopped."""
        if stop.is_set():
            return False
        outcome = await self._attempt(part, stop)
        if isinstance(outcome, _Stopped):
            return False
        if isinstance(outcome, BatchResult):
            _merge(handled.result, outcome)
            return True
        if len(part) == 1:
            kind = type(outcome.exc)
            handled.poison.append(
                Rejection(
                    part[0].raw,
                    DeadLetterReason.HANDLER_FAILED,
                    describe(outcome.exc),
                    error_class=f"{kind.__module__}.{kind.__qualname__}",
                )
            )
            self._watch.progressed()  # set aside: the rest of the partition moves on
            return True
        middle = len(part) // 2
        return await self._isolate(part[:middle], handled, stop) and await self._isolate(
            part[middle:], handled, stop
        )

    async def _attempt(self, records: Sequence[Received[E]], stop: asyncio.Event) -> _Outcome:
        """Call ``handle`` until it returns, fails deterministically with records, or the
        bound runs out (``ConsumerStalled``); a stop during a backoff returns ``_STOPPED``."""
        delay = self._retry_initial_s
        while True:
            try:
                result = await self._handler.handle(records)
            except Exception as exc:
                failure_class = self._classify(exc)
                now = self._clock.monotonic()
                first = self._watch.since is None
                self._watch.failed(now, Failure(failure_class, describe(exc)))
                self._observe(failure_class, exc, len(records))
                if failure_class is FailureClass.DETERMINISTIC and records:
                    return _Deterministic(exc)
                if first:
                    log.exception(
                        "handler failed; retrying with backoff",
                        failure_class=failure_class.value,
                        records=len(records),
                    )
                else:
                    log.warning(
                        "handler failed again; retrying with backoff",
                        failure_class=failure_class.value,
                        records=len(records),
                        failures=self._watch.failures,
                        error=describe(exc, 500),
                    )
                if self._watch.exhausted(now):
                    raise ConsumerStalled(
                        self._watch.stalled(now) or "no progress within the bound"
                    ) from exc
                left = self._watch.give_up_after_s - self._watch.stalled_for(now)
                if await self._wait(stop, max(0.0, min(delay, left))):
                    return _STOPPED
                delay = min(delay * 2, self._retry_max_s)
                continue
            self._watch.progressed()
            return result or BatchResult()


def _merge(into: BatchResult, result: BatchResult) -> None:
    """Rejections add up; metadata is the latest per partition; ``hold_from`` is the
    handler's whole hold at each call, so the latest call's stands."""
    into.rejected.extend(result.rejected)
    into.commit_metadata.update(result.commit_metadata)
    into.hold_from = dict(result.hold_from)
