"""One periodic loop for every "do this every interval" worker.

A ``Periodic`` runs a step on an interval until its stop event is set. A step that
raises is counted (``opsmesh_periodic_failures_total{loop, class}``), logged and tried
again at the next interval: nothing here stops the service. Transient failures (an
outage that passes by itself, see ``opsmesh.kafka.failures``) are logged as a warning
without a traceback; anything else is a bug or bad data and keeps its traceback. Runs
of the same failure are logged with backoff — the 1st, 2nd, 4th, 8th… in a row — and
the first success after them says so, so an outage does not fill the log.

The wait is injected (``sleep_until_stopped`` by default), so the loop is tested in
simulated time.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from opsmesh.clock import sleep_until_stopped
from opsmesh.kafka.failures import FailureClass, classify, describe
from opsmesh.logging import get_logger

log = get_logger(__name__)

# Waits ``seconds`` or until the event is set; True when it was set.
Wait = Callable[[asyncio.Event, float], Awaitable[bool]]
# One run. What it returns is ignored, except a ``NextRun``.
Step = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class NextRun:
    """Returned by a step: the next run after this long instead of the interval (0: at
    once, as a purge with a backlog does)."""

    after_s: float


class FirstRun(enum.Enum):
    AT_START = "at start"  # run, then wait
    AFTER_INTERVAL = "after interval"  # wait, then run (a restart loop does not run it each start)


class InFlight(enum.Enum):
    """What a stop does to a run that has started."""

    FINISH = "finish"  # the run ends first; the loop stops before the next one
    ABANDON = "abandon"  # the run is cancelled (it may wait on a dependency that is gone)


class PeriodicMetrics:
    """Declared once per registry: use ``periodic_metrics(registry)``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter(
            "opsmesh_periodic_failures",
            "Runs of a periodic loop that raised (retried at the next interval), by class",
            ["loop", "class"],
            registry=registry,
        )


_declared: weakref.WeakKeyDictionary[CollectorRegistry, PeriodicMetrics] = (
    weakref.WeakKeyDictionary()
)


def periodic_metrics(registry: CollectorRegistry) -> PeriodicMetrics:
    """The loops' metrics of ``registry``, declared on first use."""
    found = _declared.get(registry)
    if found is None:
        found = _declared[registry] = PeriodicMetrics(registry)
    return found


@dataclass
class Periodic:
    """``run(stop)`` is a service worker. ``interval_s`` is read before every wait, so a
    schedule (the next day's hour) is a callable."""

    name: str
    step: Step
    interval_s: float | Callable[[], float]
    metrics: PeriodicMetrics
    first_run: FirstRun = FirstRun.AFTER_INTERVAL
    in_flight: InFlight = InFlight.FINISH
    wait: Wait = sleep_until_stopped

    def __post_init__(self) -> None:
        self._streak = 0  # failures in a row

    def _interval(self) -> float:
        return self.interval_s() if callable(self.interval_s) else self.interval_s

    async def run(self, stop: asyncio.Event) -> None:
        wait: float | None = None if self.first_run is FirstRun.AT_START else self._interval()
        while not stop.is_set():
            if wait is not None and await self.wait(stop, wait):
                return
            ran = await self._run_once(stop)
            if ran is _Stopped.STOPPED:
                return
            wait = ran.after_s if isinstance(ran, NextRun) else self._interval()

    async def _run_once(self, stop: asyncio.Event) -> object:
        try:
            if self.in_flight is InFlight.FINISH:
                again = await self.step()
            else:
                outcome = await _unless_stopped(self.step(), stop)
                if outcome is _Stopped.STOPPED:
                    return outcome
                again = outcome
        except Exception as exc:
            self._failed(exc)
            return None
        if self._streak:
            log.info("periodic loop recovered", loop=self.name, failures=self._streak)
            self._streak = 0
        return again

    def _failed(self, exc: Exception) -> None:
        kind = classify(exc)
        self.metrics.failures.labels(self.name, kind.value).inc()
        self._streak += 1
        if self._streak & (self._streak - 1):
            return  # not a power of two: this run of failures was logged recently
        if kind is FailureClass.TRANSIENT:
            log.warning(
                "periodic loop failed; retrying at the next interval",
                loop=self.name,
                failures=self._streak,
                error=describe(exc, 300),
            )
        else:
            log.exception(
                "periodic loop failed; retrying at the next interval",
                loop=self.name,
                failures=self._streak,
            )


class _Stopped(enum.Enum):
    STOPPED = "stopped"


async def _unless_stopped(step: Awaitable[object], stop: asyncio.Event) -> object:
    """The step's result, or ``STOPPED`` (the step cancelled) when ``stop`` comes first."""
    run = asyncio.ensure_future(step)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
    if run.cancelled():
        return _Stopped.STOPPED
    return run.result()
