"""The notification log, and the removal of resolved alerts once their resolve is sent."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg_pool import AsyncConnectionPool

from alert_engine.core.decision import LogEntry
from alert_engine.core.flush import FlushPlan

_UPSERT = """
INSERT INTO alert_engine.notification_log
    (group_key, receiver, firing, resolved, sequence, reason, idempotency_key, notified_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (group_key, receiver) DO UPDATE SET
    firing = EXCLUDED.firing, resolved = EXCLUDED.resolved, sequence = EXCLUDED.sequence,
    reason = EXCLUDED.reason, idempotency_key = EXCLUDED.idempotency_key,
    notified_at = EXCLUDED.notified_at
"""


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
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                _UPSERT,
                [
                    (
                        p.group.key,
                        p.receiver,
                        sorted(p.entry.firing),
                        sorted(p.entry.resolved),
                        p.entry.sequence,
                        p.reason.value,
                        p.idempotency_key,
                        p.entry.notified_at,
                    )
                    for p in sent
                    if p.entry is not None and p.reason is not None
                ],
            )
