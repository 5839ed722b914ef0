"""The notification log, and the removal of resolved alerts once their resolve is sent."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from psycopg_pool import AsyncConnectionPool

from alert_engine.core.decision import LogEntry
from alert_engine.core.flush import FlushPlan

# One statement per flush, whatever its number of groups: the rows as parallel arrays
# (firing/resolved sets as JSON arrays, as a text[][] cannot be ragged).
_UPSERT = """
INSERT INTO alert_engine.notification_log
    (group_key, receiver, firing, resolved, sequence, reason, idempotency_key, notified_at)
SELECT g, r, ARRAY(SELECT jsonb_array_elements_text(f::jsonb)),
       ARRAY(SELECT jsonb_array_elements_text(v::jsonb)), s, why, k, t
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[],
            %s::text[], %s::float8[]) AS u(g, r, f, v, s, why, k, t)
ON CONFLICT (group_key, receiver) DO UPDATE SET
    firing = EXCLUDED.firing, resolved = EXCLUDED.resolved, sequence = EXCLUDED.sequence,
    reason = EXCLUDED.reason, idempotency_key = EXCLUDED.idempotency_key,
    notified_at = EXCLUDED.notified_at
"""


_json = msgspec.json.Encoder()


def _encode(values: list[str]) -> str:
    return _json.encode(values).decode()


class NotificationLog:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def load(self) -> dict[tuple[str, str], LogEntry]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT group_key, receiver, firing, resolved, notified_at, sequence"
                " FROM alert_engine.notification_log"
            )
            rows = await cursor.fetchall()
        return {(r[0], r[1]): LogEntry(frozenset(r[2]), frozenset(r[3]), r[4], r[5]) for r in rows}

    async def record(self, plans: Sequence[FlushPlan]) -> None:
        """Log what was sent, once the requests are durable in Kafka."""
        sent = [p for p in plans if p.entry is not None and p.reason is not None]
        if not sent:
            return
        rows = [
            (
                p.group.key,
                p.receiver,
                _encode(sorted(p.entry.firing)),
                _encode(sorted(p.entry.resolved)),
                p.entry.sequence,
                p.reason.value,
                p.idempotency_key or "",
                p.entry.notified_at,
            )
            for p in sent
            if p.entry is not None and p.reason is not None
        ]
        columns = [list(column) for column in zip(*rows, strict=True)]
        async with self._pool.connection() as conn:
            await conn.execute(_UPSERT, columns)
