"""Offsets stored with the effects they produced, for effectively-once state updates.

A handler that adds to totals (calls += n) would double-count a batch replayed after a
crash between its database commit and its Kafka offset commit. Keeping the next offset
per partition in the same transaction as the effects, and skipping records below it,
makes a replay harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from psycopg import AsyncCursor

from opsmesh.kafka.consumer import Received

R = TypeVar("R", bound=Received[Any])

# The table is created with the migrations bookkeeping (opsmesh.db.migrations).


async def unapplied(cur: AsyncCursor[Any], consumer: str, records: Sequence[R]) -> list[R]:
    """Lock the partitions' rows and return the records not applied yet (call in a transaction)."""
    # One pass for each partition's lowest offset: this runs per record on the hot path,
    # and a batch is almost always entirely new (then it is returned without a filter).
    lowest: dict[tuple[str, int], int] = {}
    for r in records:
        message = r.message
        key = (message.topic, message.partition)
        offset = message.offset
        if lowest.get(key, offset + 1) > offset:
            lowest[key] = offset
    if not lowest:
        return []
    partitions = sorted(lowest)
    await cur.execute(
        "SELECT topic, partition, next_offset FROM opsmesh_applied_offsets"
        " WHERE consumer = %s"
        " AND (topic, partition) IN (SELECT * FROM unnest(%s::text[], %s::int[]))"
        " FOR UPDATE",
        (consumer, [p[0] for p in partitions], [p[1] for p in partitions]),
    )
    applied = {(row[0], row[1]): row[2] for row in await cur.fetchall()}
    if all(lowest[p] >= o for p, o in applied.items() if p in lowest):
        return list(records)
    return [r for r in records if r.offset >= applied.get(r.partition, -1)]


async def mark_applied(cur: AsyncCursor[Any], consumer: str, records: Sequence[R]) -> None:
    """Record the next offset per partition (in the same transaction as the effects)."""
    next_offsets: dict[tuple[str, int], int] = {}
    for r in records:
        message = r.message
        key = (message.topic, message.partition)
        offset = message.offset + 1
        if next_offsets.get(key, 0) < offset:
            next_offsets[key] = offset
    if not next_offsets:
        return
    await cur.executemany(
        "INSERT INTO opsmesh_applied_offsets (consumer, topic, partition, next_offset)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (consumer, topic, partition) DO UPDATE"
        " SET next_offset = GREATEST(opsmesh_applied_offsets.next_offset, EXCLUDED.next_offset)",
        [(consumer, t, p, o) for (t, p), o in next_offsets.items()],
    )
