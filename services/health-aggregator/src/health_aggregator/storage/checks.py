"""Check state and status history, written once per batch."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg_pool import AsyncConnectionPool

from health_aggregator.core.book import CheckState, StatusChange
from opsmesh.events.health import HealthStatus

_UPSERT = """
INSERT INTO health_aggregator.checks
    (service, instance, check_name, status, critical, output, reported_at, expires_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (service, instance, check_name) DO UPDATE SET
    status = EXCLUDED.status, critical = EXCLUDED.critical, output = EXCLUDED.output,
    reported_at = EXCLUDED.reported_at, expires_at = EXCLUDED.expires_at
WHERE health_aggregator.checks.reported_at <= EXCLUDED.reported_at
"""
_HISTORY = """
INSERT INTO health_aggregator.status_history
    (service, instance, check_name, previous, status, cause, at)
VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s))
"""


class CheckStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def save(self, states: Sequence[CheckState], changes: Sequence[StatusChange]) -> None:
        if not states and not changes:
            return
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if states:
                await cur.executemany(
                    _UPSERT,
                    [
                        (
                            s.service,
                            s.instance,
                            s.check,
                            s.status.value,
                            s.critical,
                            s.output,
                            s.reported_at,
                            s.expires_at,
                        )
                        for s in states
                    ],
                )
            if changes:
                await cur.executemany(
                    _HISTORY,
                    [
                        (
                            c.state.service,
                            c.state.instance,
                            c.state.check,
                            c.previous.value if c.previous else None,
                            c.state.status.value,
                            c.cause.value,
                            c.at,
                        )
                        for c in changes
                    ],
                )

    async def load(self) -> list[CheckState]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT service, instance, check_name, status, critical, output, reported_at,"
                " expires_at FROM health_aggregator.checks"
            )
            rows = await cursor.fetchall()
        return [
            CheckState(r[0], r[1], r[2], HealthStatus(r[3]), r[4], r[5], r[6], r[7]) for r in rows
        ]
