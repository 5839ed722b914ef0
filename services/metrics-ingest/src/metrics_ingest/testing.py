"""Test doubles of metrics-ingest's ports, for its tests; no runtime module imports this."""

from __future__ import annotations

from collections.abc import Sequence

from metrics_ingest.rollup.closed import ClosedWindow
from opsmesh.kafka.producer import Outgoing


class MemoryHistory:
    """``History`` that keeps every window it is given."""

    def __init__(self) -> None:
        self.windows: list[ClosedWindow] = []

    async def store(self, windows: Sequence[ClosedWindow], now: float) -> int:
        self.windows.extend(windows)
        return 0


class MemoryPublisher:
    """``Publisher`` that keeps every record it is given."""

    def __init__(self) -> None:
        self.items: list[Outgoing] = []

    async def publish_batched(self, items: Sequence[Outgoing]) -> None:
        self.items.extend(items)
