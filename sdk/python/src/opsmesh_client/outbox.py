"""The bounded buffer between the application's threads and the sending thread.

``offer`` never blocks and never waits on the network: when the buffer is full (the mesh
is down or slower than the application) the record is dropped and counted by reason, and
the counts are what ``Client.stats()`` reports and what the SDK publishes about itself
once the mesh is back.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class DropReason(StrEnum):
    BUFFER_FULL = "buffer_full"  # the application produced faster than the mesh took
    TRANSPORT_FULL = "transport_full"  # librdkafka's own queue was full (broker gone)
    SEND_FAILED = "send_failed"  # the transport gave up on the record (mesh unreachable)
    REJECTED = "rejected"  # the mesh refused the record as invalid (a 4xx, never retried)
    CLOSED = "closed"  # offered after shutdown


class Outbox(Generic[T]):
    """Holds records, or what the sending thread turns into records (``T``)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._records: deque[T] = deque()
        self._lock = threading.Lock()
        self._dropped: Counter[DropReason] = Counter()
        self._accepted = 0
        self._closed = False

    def offer(self, record: T) -> bool:
        with self._lock:
            if self._closed:
                self._dropped[DropReason.CLOSED] += 1
                return False
            if len(self._records) >= self.capacity:
                self._dropped[DropReason.BUFFER_FULL] += 1
                return False
            self._records.append(record)
            self._accepted += 1
            return True

    def drain(self, limit: int) -> list[T]:
        with self._lock:
            count = min(limit, len(self._records))
            return [self._records.popleft() for _ in range(count)]

    def drop(self, reason: DropReason, count: int = 1) -> None:
        with self._lock:
            self._dropped[reason] += count

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __len__(self) -> int:
        return len(self._records)

    @property
    def accepted(self) -> int:
        return self._accepted

    def dropped(self) -> dict[str, int]:
        with self._lock:
            return {reason.value: n for reason, n in self._dropped.items()}
