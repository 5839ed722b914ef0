"""Stored offsets (opsmesh.db.offsets) against a fake cursor: which records a batch still
has to apply, and the next offset recorded per partition."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from opsmesh.db.offsets import mark_applied, unapplied
from opsmesh.kafka.handler import Received


class FakeCursor:
    """Answers the lock query with ``stored`` rows of the partitions asked for."""

    def __init__(self, stored: dict[tuple[str, int], int]) -> None:
        self.stored = stored
        self.asked: list[tuple[str, int]] = []
        self.written: list[tuple[str, str, int, int]] = []

    async def execute(self, query: str, params: tuple[Any, ...]) -> None:
        _, topics, partitions = params
        self.asked = list(zip(topics, partitions, strict=True))

    async def fetchall(self) -> list[tuple[str, int, int]]:
        return [(t, p, self.stored[(t, p)]) for t, p in self.asked if (t, p) in self.stored]

    async def executemany(self, query: str, rows: list[tuple[str, str, int, int]]) -> None:
        self.written.extend(rows)


def record(topic: str, partition: int, offset: int) -> Received[Any]:
    return Received(None, SimpleNamespace(topic=topic, partition=partition, offset=offset))


BATCH = [record("a", 0, 10), record("b", 1, 3), record("a", 0, 11), record("b", 1, 4)]


async def test_a_new_batch_is_applied_whole() -> None:
    cur = FakeCursor({("a", 0): 10, ("b", 1): 2})
    assert await unapplied(cur, "c", BATCH) == BATCH  # type: ignore[arg-type]
    assert cur.asked == [("a", 0), ("b", 1)]


async def test_records_below_the_stored_offset_are_skipped_per_partition() -> None:
    cur = FakeCursor({("a", 0): 11, ("b", 1): 0, ("z", 9): 99})
    fresh = await unapplied(cur, "c", BATCH)  # type: ignore[arg-type]
    assert fresh == [BATCH[1], BATCH[2], BATCH[3]]


async def test_a_replayed_batch_is_skipped_whole() -> None:
    cur = FakeCursor({("a", 0): 12, ("b", 1): 5})
    assert await unapplied(cur, "c", BATCH) == []  # type: ignore[arg-type]


async def test_an_empty_batch_asks_nothing() -> None:
    cur = FakeCursor({})
    assert await unapplied(cur, "c", []) == []  # type: ignore[arg-type]
    await mark_applied(cur, "c", [])  # type: ignore[arg-type]
    assert cur.asked == []
    assert cur.written == []


async def test_the_next_offset_per_partition_is_one_past_the_highest() -> None:
    cur = FakeCursor({})
    await mark_applied(cur, "c", [*reversed(BATCH), record("a", 2, 0)])  # type: ignore[arg-type]
    assert sorted(cur.written) == [("c", "a", 0, 12), ("c", "a", 2, 1), ("c", "b", 1, 5)]
