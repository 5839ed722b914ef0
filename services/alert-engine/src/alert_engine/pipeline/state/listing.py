"""The API listings' read of PostgreSQL: every alert and silence of the deployment, one
read per replica at a time, each wait bounded (``EngineState.listing`` applies it)."""

from __future__ import annotations

import asyncio
import enum
from typing import Protocol

import psycopg

from alert_engine.core.alerts import StoredAlert
from alert_engine.core.silences import Silence
from opsmesh.logging import get_logger

log = get_logger(__name__)

LISTING_READ_TIMEOUT_S = 2.0  # the API's read of every alert and silence

Found = tuple[list[StoredAlert], list[Silence]]


class ListingRead(enum.StrEnum):
    """Where an API listing's alerts and silences came from, and why."""

    DURABLE = "durable"  # read from PostgreSQL for the request: the whole deployment, now
    # This replica's copy, as of its last sync (``sync``), because:
    UNAVAILABLE = "postgres_unavailable"  # PostgreSQL did not answer in time
    BUSY = "busy"  # other listings held the one read a replica runs at a time too long


class Snapshots(Protocol):
    async def snapshot(self, timeout_s: float) -> Found: ...


class ListingReads:
    """One listing read of PostgreSQL at a time: the read APIs need no token, so many
    clients asking at once cost PostgreSQL one full read per replica, not one each."""

    def __init__(self, store: Snapshots, timeout_s: float = LISTING_READ_TIMEOUT_S) -> None:
        self._store = store
        self._slot = asyncio.Semaphore(1)
        self.timeout_s = timeout_s
        self._task: asyncio.Task[Found] | None = None

    async def read(self) -> tuple[Found, ListingRead]:
        """The wait for the read before this one and for this one are each bounded by
        ``timeout_s``; past one, nothing is returned and the reason is. A read that is
        late is not cancelled (cancelling a query waits on the server too, which a
        paused PostgreSQL never answers): it finishes on its own, holding the one read
        slot, so later requests do not pile up reads."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._slot.acquire()
        except TimeoutError:
            return ([], []), ListingRead.BUSY
        task = asyncio.create_task(self._store.snapshot(self.timeout_s))
        self._task = task
        task.add_done_callback(self._done)
        done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        failure = task.exception() if done else None
        if not done or isinstance(failure, psycopg.OperationalError):
            why = str(failure) if failure else f"no answer in {self.timeout_s} s"
            log.warning("listing from memory: PostgreSQL did not answer", error=why[:200])
            return ([], []), ListingRead.UNAVAILABLE
        if failure is not None:
            raise failure
        return task.result(), ListingRead.DURABLE

    def _done(self, task: asyncio.Task[Found]) -> None:
        """The read slot is free again; a late read's outcome is retrieved (logged above
        when it was awaited, or dropped: its request was already answered)."""
        self._slot.release()
        if not task.cancelled():
            task.exception()
        if self._task is task:
            self._task = None
