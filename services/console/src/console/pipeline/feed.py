"""The alert feed: the alert-engine's groups and its pending rule alerts, read every few
seconds and kept decoded.

Pages and filters are served from the latest read, so with 10,000 alerts a page costs a
filter and a render, never a listing at the engine; live pages wait on ``changed`` and
reload their part when a read differs from the one before (an alert that turns pending
is a change too).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from console.core.shapes import AlertGroup, PendingAlert, groups_decoder, pending_decoder
from console.upstream import UpstreamError
from opsmesh.clock import Clock


class GroupsSource(Protocol):
    """Where the alerts come from (``console.upstream.AlertEngine``): the alert-engine's
    ``/api/v2/alerts/groups`` body and its ``/api/v1/alerts?pending_only=true`` body;
    both raise ``UpstreamError``."""

    async def groups_body(self) -> bytes: ...

    async def pending_body(self) -> bytes: ...


class AlertFeed:
    def __init__(self, engine: GroupsSource, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._body: bytes | None = None
        self._pending_body: bytes | None = None
        self._changed = asyncio.Condition()
        self.groups: list[AlertGroup] = []
        self.pending: list[PendingAlert] = []
        self.version = 0
        self.read_at: float | None = None
        self.error: UpstreamError | None = None

    async def refresh(self) -> None:
        """One read; a failed read keeps the last groups and says why (the page shows it),
        and is raised for the loop to count and log."""
        try:
            body, pending_body = await asyncio.gather(
                self._engine.groups_body(), self._engine.pending_body()
            )
        except UpstreamError as exc:
            self.error = exc
            raise
        self.error = None
        self.read_at = self._clock.now()
        if body == self._body and pending_body == self._pending_body:
            return
        if body != self._body:
            # Decoding 10,000 alerts takes tens of milliseconds: off the event loop.
            self.groups = await asyncio.to_thread(groups_decoder.decode, body)
            self._body = body
        if pending_body != self._pending_body:
            self.pending = pending_decoder.decode(pending_body).pending
            self._pending_body = pending_body
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def changed(self, seen: int, timeout_s: float) -> int:
        """The version once it differs from ``seen``, or ``seen`` after ``timeout_s``."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version != seen), timeout_s
                )
            return self.version

    async def ready(self) -> None:
        """The readiness probe: the latest read succeeded."""
        if self.error is not None:
            raise self.error
        if self.read_at is None:
            raise RuntimeError("the alert-engine has not been read yet")
