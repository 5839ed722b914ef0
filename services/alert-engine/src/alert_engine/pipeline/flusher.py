"""The flusher: wakes when the earliest group is due, when alerts arrive, or at the latest
every tick (sync, maintenance), and flushes due groups, so timers fire on time whether
or not signals are flowing."""

from __future__ import annotations

import asyncio
import contextlib

from alert_engine.pipeline.state import EngineState
from opsmesh.logging import get_logger

log = get_logger(__name__)


async def run_flusher(
    state: EngineState,
    stop: asyncio.Event,
    *,
    tick_s: float,
    sync_every_s: float,
    maintain_every_s: float,
    retention_days: float,
) -> None:
    await state.restored.wait()
    last_maintenance = last_sync = state.clock.monotonic()
    failures = 0
    while not stop.is_set():
        try:
            if state.clock.monotonic() - last_sync >= sync_every_s:
                await state.sync()  # reads without the lock, applies under it
                last_sync = state.clock.monotonic()
            await state.flush()  # locks for planning and applying, not for its I/O
            if state.clock.monotonic() - last_maintenance >= maintain_every_s:
                await state.maintain(retention_days)
                last_maintenance = state.clock.monotonic()
            failures = 0
        except Exception:
            # Kafka or PostgreSQL unavailable: nothing was marked done, so the same groups
            # are planned again on the next tick (back-pressure, not loss).
            failures += 1
            log.exception("flush failed; retrying", failures=failures)
        state.wake.clear()
        wait = next_wait(tick_s, failures, state.next_flush_in())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_either(state.wake, stop), timeout=wait)


# A floor on the wait for a group due now: were one left due after its flush (a bug), the
# loop would still yield the event loop rather than spin on it.
MIN_WAIT_S = 0.001


def next_wait(tick_s: float, failures: int, next_due_in: float | None) -> float:
    """How long the flusher sleeps: until the earliest group is due, at most a tick (a
    group flushes as its ``group_wait`` elapses, not on the tick after); after failures,
    an exponential backoff that a due group does not shorten."""
    if failures:
        return min(10.0, tick_s * 2.0**failures)
    if next_due_in is None:
        return tick_s
    return max(MIN_WAIT_S, min(tick_s, next_due_in))


async def _either(first: asyncio.Event, second: asyncio.Event) -> None:
    waiters = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
