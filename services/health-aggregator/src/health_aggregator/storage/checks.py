"""Check state and status history, written once per batch; read per partition and
incrementally for the view."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from psycopg_pool import AsyncConnectionPool

from health_aggregator.core.checks import CheckKey, CheckState, StatusChange
from opsmesh.events.health import HealthStatus
from opsmesh.topics import HEALTH

_UPSERT = """
INSERT INTO health_aggregator.checks
    (service, instance, check_name, status, critical, output, reported_at, expires_at,
     kafka_partition, changed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp())
ON CONFLICT (service, instance, check_name) DO UPDATE SET
    status = EXCLUDED.status, critical = EXCLUDED.critical, output = EXCLUDED.output,
    reported_at = EXCLUDED.reported_at, expires_at = EXCLUDED.expires_at,
    kafka_partition = EXCLUDED.kafka_partition, deregistered_at = NULL,
    changed_at = CASE
        WHEN health_aggregator.checks.status IS DISTINCT FROM EXCLUDED.status
          OR health_aggregator.checks.critical IS DISTINCT FROM EXCLUDED.critical
          OR health_aggregator.checks.deregistered_at IS NOT NULL
        THEN EXCLUDED.changed_at ELSE health_aggregator.checks.changed_at END
WHERE health_aggregator.checks.reported_at <= EXCLUDED.reported_at
"""
# Marked, not deleted: the fleet views of every replica learn it from the changed row
# (retention deletes it later). Only if no report came since the owner decided.
_DEREGISTER = """
UPDATE health_aggregator.checks SET deregistered_at = %s, changed_at = clock_timestamp()
WHERE service = %s AND instance = %s AND check_name = %s AND reported_at = %s
  AND deregistered_at IS NULL
"""
_HISTORY = """
INSERT INTO health_aggregator.status_history
    (service, instance, check_name, previous, status, cause, at)
VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s))
"""
_COLUMNS = (
    "SELECT service, instance, check_name, status, critical, output, reported_at, expires_at,"
    " kafka_partition, changed_at, deregistered_at FROM health_aggregator.checks"
)
_REGISTERED = " WHERE deregistered_at IS NULL"
_PARTITIONER = DefaultPartitioner()
_ALL = list(range(HEALTH.partitions))


def partition_of(service: str, instance: str) -> int:
    """Where a producer keying by ``service/instance`` (the topic's contract) sends it."""
    return int(_PARTITIONER(f"{service}/{instance}".encode(), _ALL, _ALL))


def _state(row: Sequence[Any]) -> CheckState:
    partition = row[8] if row[8] is not None else partition_of(row[0], row[1])
    return CheckState(
        row[0], row[1], row[2], HealthStatus(row[3]), row[4], row[5], row[6], row[7], partition
    )


class CheckStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def save(
        self,
        states: Sequence[CheckState],
        changes: Sequence[StatusChange],
        deregistered: Sequence[tuple[CheckState, float]] = (),
    ) -> None:
        """Upsert ``states``, mark ``deregistered`` (state, when), record ``changes``."""
        if not states and not changes and not deregistered:
            return
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if deregistered:
                await cur.executemany(
                    _DEREGISTER,
                    [(at, s.service, s.instance, s.check, s.reported_at) for s, at in deregistered],
                )
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
                            s.partition,
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

    async def load(self, partitions: Iterable[int] | None = None) -> list[CheckState]:
        """Every check, or only those of ``partitions`` (rows from before partitions were
        recorded are placed by their key)."""
        async with self._pool.connection() as conn:
            if partitions is None:
                cursor = await conn.execute(_COLUMNS + _REGISTERED)
            else:
                cursor = await conn.execute(
                    _COLUMNS
                    + _REGISTERED
                    + " AND (kafka_partition = ANY(%s) OR kafka_partition IS NULL)",
                    (list(partitions),),
                )
            rows = await cursor.fetchall()
        states = [_state(r) for r in rows]
        if partitions is None:
            return states
        wanted = set(partitions)
        return [s for s in states if s.partition in wanted]

    async def changed_since(
        self, since: dt.datetime | None
    ) -> tuple[list[CheckState], list[CheckKey], dt.datetime | None]:
        """Rows whose status changed after ``since`` (all when None): the registered
        checks, the keys of those deregistered, and the newest change time seen."""
        async with self._pool.connection() as conn:
            if since is None:
                cursor = await conn.execute(_COLUMNS)
            else:
                cursor = await conn.execute(_COLUMNS + " WHERE changed_at > %s", (since,))
            rows = await cursor.fetchall()
        newest = max((r[9] for r in rows), default=since)
        current = [_state(r) for r in rows if r[10] is None]
        gone = [(r[0], r[1], r[2]) for r in rows if r[10] is not None]
        return current, gone, newest

    async def of_service(self, service: str) -> list[CheckState]:
        """A service's checks as stored now (fresh report times, unlike the view)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_COLUMNS + _REGISTERED + " AND service = %s", (service,))
            rows = await cursor.fetchall()
        return [_state(r) for r in rows]

    async def history(self, service: str, limit: int) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT instance, check_name, previous, status, cause,"
                " extract(epoch FROM at)::float8 FROM health_aggregator.status_history"
                " WHERE service = %s ORDER BY at DESC, id DESC LIMIT %s",
                (service, limit),
            )
            rows = await cursor.fetchall()
        return [
            {
                "instance": r[0],
                "check": r[1],
                "previous": r[2],
                "status": r[3],
                "cause": r[4],
                "at": r[5],
            }
            for r in rows
        ]
