"""Routing records queued in merge order under the engine lock, sent outside it.

The records of one alert must reach its group's partition in the order the active alerts merged
its updates (the owner applies them in that order). Merging happens under the engine
lock; handing records to the producer may wait (metadata, a full batch while the broker
is slow), which must not happen under that lock. So a writer adds its records here while
it holds the lock (no await: a plain append), releases the lock, and calls ``sent``:
whoever holds the outbox's own lock drains the whole queue, in order, into the producer,
so records leave in merge order whichever writer drains them.

Lock order: the engine lock is never held while waiting for the outbox's lock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from opsmesh.kafka.producer import Outgoing, acknowledged


class RecordQueue(Protocol):
    async def enqueue(self, items: Sequence[Outgoing]) -> list[asyncio.Future[Any]]: ...


@dataclass(eq=False, slots=True)
class Ticket:
    """One writer's records; ``acks`` once handed to the producer, or ``error``."""

    records: list[Outgoing]
    handed: bool = False
    acks: list[asyncio.Future[Any]] = field(default_factory=list)
    error: BaseException | None = None


class RoutingOutbox:
    def __init__(self, producer: RecordQueue) -> None:
        self._producer = producer
        self._queue: deque[Ticket] = deque()
        self._draining = asyncio.Lock()

    def add(self, records: list[Outgoing]) -> Ticket:
        """Queue records (call under the engine lock, so queue order is merge order)."""
        ticket = Ticket(records)
        if records:
            self._queue.append(ticket)
        else:
            ticket.handed = True
        return ticket

    async def sent(self, ticket: Ticket) -> None:
        """Hand every queued record to the producer in order, then wait until the broker
        acknowledged this ticket's records (acks=all); raises their failure."""
        if not ticket.handed:
            async with self._draining:
                while self._queue:
                    queued = self._queue.popleft()
                    try:
                        queued.acks = await self._producer.enqueue(queued.records)
                    except Exception as exc:  # its writer learns of it; the others go on
                        queued.error = exc
                    finally:  # a cancelled drain fails its ticket instead of losing it
                        if not queued.acks and queued.error is None:
                            queued.error = asyncio.CancelledError()
                        queued.handed = True
        if ticket.error is not None:
            raise ticket.error
        await acknowledged(ticket.acks)

    def __len__(self) -> int:
        return len(self._queue)
