"""Bounded stops: SIGTERM ends the process within its documented bound (10 s), whatever
the state of the broker, the database or Redis.

Clients' own stops wait on the network: aiokafka's consumer leaves its group and its
producer flushes pending batches, each for up to its request timeout (40 s) while the
broker is unreachable, and an offset commit waits for a coordinator for ever. Every such
step runs under ``finish_within``; ``ShutdownDeadline`` is the backstop that ends the
process if the whole shutdown still overruns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable
from typing import Any

from opsmesh.logging import get_logger

log = get_logger(__name__)

# After a cancellation, how long a step may take to unwind before it is left behind.
CANCEL_GRACE_S = 0.5


async def finish_within(step: Awaitable[Any], timeout_s: float, what: str) -> bool:
    """Await ``step`` for up to ``timeout_s``; past that, cancel it and go on. True when
    it completed; a failure or an overrun is logged (a stop goes on with its next step)."""
    task = asyncio.ensure_future(step)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_GRACE_S)
        log.warning("stop step did not finish in time; abandoned", step=what, timeout_s=timeout_s)
        return False
    if task.cancelled():
        log.warning("stop step was cancelled", step=what)
        return False
    error = task.exception()
    if error is not None:
        log.warning("stop step failed", step=what, error=repr(error)[:500])
        return False
    return True


class ShutdownDeadline:
    """Once started, ends the process with ``status`` after ``seconds`` unless it has
    exited by then: a thread, so a blocked event loop cannot hold it back."""

    def __init__(self, seconds: float, status: int) -> None:
        self._seconds = seconds
        self._status = status
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        if self._timer is not None:
            return
        self._timer = threading.Timer(self._seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        log.error("shutdown overran its deadline; exiting now", deadline_s=self._seconds)
        logging.shutdown()  # flush the handlers: os._exit skips every cleanup
        os._exit(self._status)
