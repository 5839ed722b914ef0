"""Doubles for tests of the SDK and of applications that use it (no runtime module
imports this)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from opsmesh_client.outbox import DropReason
from opsmesh_client.settings import Settings
from opsmesh_client.wire import Kind, Record


class MemoryTransport:
    """Keeps what it is sent; ``fail_next`` makes sends fail as an unreachable mesh does."""

    def __init__(self, failed: Callable[[DropReason, int], None]) -> None:
        self._failed = failed
        self._lock = threading.Lock()
        self.records: list[Record] = []
        self.failing = False

    def send(self, records: Sequence[Record]) -> None:
        if self.failing:
            self._failed(DropReason.SEND_FAILED, len(records))
            return
        with self._lock:
            self.records.extend(records)

    def of(self, kind: Kind) -> list[Record]:
        with self._lock:
            return [r for r in self.records if r.kind is kind]

    def flush(self, timeout_s: float) -> int:
        return 0

    def close(self, timeout_s: float) -> None:
        return None


class MemoryTransports:
    """A transport factory for ``Client(transport=...)`` that remembers what it made."""

    def __init__(self) -> None:
        self.made: list[MemoryTransport] = []

    def __call__(self, _: Settings, failed: Callable[[DropReason, int], None]) -> MemoryTransport:
        transport = MemoryTransport(failed)
        self.made.append(transport)
        return transport

    @property
    def transport(self) -> MemoryTransport:
        return self.made[-1]


def compute_for(seconds: float) -> int:
    """Busy on the CPU until ``seconds`` have passed: a profiled request's hot function in
    tests. pyinstrument records a stack at a call or a return once its interval has passed,
    so the clock is read between runs of plain arithmetic: the call that reads it finds
    this function running, and the time is this function's own."""
    end, turns = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        for _ in range(1000):
            turns += 1
    return turns
