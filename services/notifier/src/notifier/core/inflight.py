"""Offsets still in flight per partition, so the consumer commits only finished work.

Requests finish out of order (each destination has its own lane), so the committable
point of a partition is the lowest offset not yet finished: ``hold_from``.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(slots=True)
class _Offsets:
    heap: list[int] = field(default_factory=list)
    live: dict[int, int] = field(default_factory=dict)  # offset -> open count


class InFlight(Generic[P]):
    def __init__(self) -> None:
        self._by_partition: dict[P, _Offsets] = {}

    def add(self, partition: P, offset: int) -> None:
        offsets = self._by_partition.setdefault(partition, _Offsets())
        count = offsets.live.get(offset, 0)
        if count == 0:
            heapq.heappush(offsets.heap, offset)
        offsets.live[offset] = count + 1

    def done(self, partition: P, offset: int) -> None:
        offsets = self._by_partition.get(partition)
        if offsets is None or offset not in offsets.live:
            return
        offsets.live[offset] -= 1
        if offsets.live[offset] == 0:
            del offsets.live[offset]
        # Finished offsets leave the heap lazily, when they reach its top.
        while offsets.heap and offsets.heap[0] not in offsets.live:
            heapq.heappop(offsets.heap)
        if not offsets.live:
            del self._by_partition[partition]

    def hold_from(self) -> dict[P, int]:
        return {p: o.heap[0] for p, o in self._by_partition.items() if o.heap}

    def forget(self, partition: P) -> None:
        self._by_partition.pop(partition, None)

    def __len__(self) -> int:
        return sum(len(o.live) for o in self._by_partition.values())
