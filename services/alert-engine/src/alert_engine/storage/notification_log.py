"""The notification log, and the removal of resolved alerts once their resolve is sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from alert_engine.core.decision import LogEntry
from alert_engine.core.flush import FlushPlan
from alert_engine.storage.active_alerts import raw_jsonb

# One statement per flush, whatever its number of groups: the rows as one JSON array.
_UPSERT = """
INSERT INTO alert_engine.notification_log
    (group_key, receiver, firing, resolved, sequence, reason, idempotency_key, notified_at)
SELECT g, r, ARRAY(SELECT jsonb_array_elements_text(f)), ARRAY(SELECT jsonb_array_elements_text(v)),
       s, why, k, t
FROM jsonb_to_recordset(%s) AS u(
    g text, r text, f jsonb, v jsonb, s bigint, why text, k text, t float8)
ON CONFLICT (alert_engine.key_digest(group_key), receiver) DO UPDATE SET
    firing = EXCLUDED.firing, resolved = EXCLUDED.resolved, sequence = EXCLUDED.sequence,
    reason = EXCLUDED.reason, idempotency_key = EXCLUDED.idempotency_key,
    notified_at = EXCLUDED.notified_at
WHERE alert_engine.notification_log.sequence < EXCLUDED.sequence
RETURNING group_key, receiver
"""
# The entries a flush could not log because the table holds a later sequence already
# (another replica logged the group since this one read the log: a rebalance).
_CURRENT = """
SELECT group_key, receiver, firing, resolved, notified_at, sequence
FROM alert_engine.notification_log l
JOIN unnest(%s::text[], %s::text[]) AS k(g, r)
  ON alert_engine.key_digest(l.group_key) = alert_engine.key_digest(k.g) AND l.receiver = k.r
  AND l.group_key = k.g
"""


_EXPIRED = """
SELECT group_key, receiver, notified_at FROM alert_engine.notification_log
WHERE notified_at < %(cutoff)s
  AND (%(at)s::float8 IS NULL OR (notified_at, group_key, receiver) > (%(at)s, %(g)s, %(r)s))
ORDER BY notified_at, group_key, receiver
LIMIT %(limit)s
"""
# Only an entry still as it was judged: a flush that logged the group since keeps it.
_FORGET = """
DELETE FROM alert_engine.notification_log l
USING unnest(%s::text[], %s::text[], %s::float8[]) AS f(g, r, t)
WHERE alert_engine.key_digest(l.group_key) = alert_engine.key_digest(f.g)
  AND l.group_key = f.g AND l.receiver = f.r AND l.notified_at = f.t
"""

# The purge runs under ``flushing``: a database that does not answer must not hold it.
_PURGE_TIMEOUT = "SELECT set_config('statement_timeout', '30s', true)"
# (group key, receiver, notified at): one entry as a purge judges it.
LoggedAt = tuple[str, str, float]

_json = msgspec.json.Encoder()


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

    async def record(self, plans: Sequence[FlushPlan]) -> dict[tuple[str, str], LogEntry]:
        """Log what was sent, once the requests are durable in Kafka.

        Never backwards: an entry replaces the logged one only with a higher sequence.
        Returns, for each plan whose entry was not written, the entry the table holds
        (the caller must decide from that one, not from its own)."""
        sent = [p for p in plans if p.entry is not None and p.reason is not None]
        if not sent:
            return {}
        rows = [
            {
                "g": p.group.key,
                "r": p.receiver,
                "f": sorted(p.entry.firing),
                "v": sorted(p.entry.resolved),
                "s": p.entry.sequence,
                "why": p.reason.value,
                "k": p.idempotency_key or "",
                "t": p.entry.notified_at,
            }
            for p in sent
            if p.entry is not None and p.reason is not None
        ]
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_UPSERT, (raw_jsonb(_json.encode(rows)),))
            written = {(r[0], r[1]) for r in await cursor.fetchall()}
            refused = [(row["g"], row["r"]) for row in rows if (row["g"], row["r"]) not in written]
            if not refused:
                return {}
            cursor = await conn.execute(
                _CURRENT, ([g for g, _ in refused], [r for _, r in refused])
            )
            found = await cursor.fetchall()
        return {(r[0], r[1]): LogEntry(frozenset(r[2]), frozenset(r[3]), r[4], r[5]) for r in found}

    async def entries(
        self,
        *,
        fingerprint: str | None = None,
        group_key: str | None = None,
        receiver: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """For the API: the last notification per (group, receiver), newest first; with
        ``fingerprint``, those whose firing or resolved alerts name it. The table holds
        one row per group and receiver, so the scan stays as small as the groups."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT group_key, receiver, firing, resolved, sequence, reason,"
                " idempotency_key, notified_at FROM alert_engine.notification_log"
                " WHERE (%(fp)s::text IS NULL OR %(fp)s = ANY(firing) OR %(fp)s = ANY(resolved))"
                " AND (%(g)s::text IS NULL OR (alert_engine.key_digest(group_key)"
                "   = alert_engine.key_digest(%(g)s) AND group_key = %(g)s))"
                " AND (%(r)s::text IS NULL OR receiver = %(r)s)"
                " ORDER BY notified_at DESC, receiver LIMIT %(limit)s",
                {"fp": fingerprint, "g": group_key, "r": receiver, "limit": limit},
            )
            rows = await cursor.fetchall()
        return [
            {
                "group_key": r[0],
                "receiver": r[1],
                "firing": sorted(r[2]),
                "resolved": sorted(r[3]),
                "sequence": r[4],
                "reason": r[5],
                "idempotency_key": r[6],
                "notified_at": r[7],
            }
            for r in rows
        ]

    async def expired(
        self, cutoff: float, limit: int, after: LoggedAt | None = None
    ) -> list[LoggedAt]:
        """Entries last notified before ``cutoff``, oldest first, from after ``after``."""
        at, g, r = (after[2], after[0], after[1]) if after else (None, None, None)
        async with self._pool.connection() as conn:
            await conn.execute(_PURGE_TIMEOUT)
            cursor = await conn.execute(
                _EXPIRED, {"cutoff": cutoff, "at": at, "g": g, "r": r, "limit": limit}
            )
            return [(row[0], row[1], row[2]) for row in await cursor.fetchall()]

    async def forget(self, entries: Sequence[LoggedAt]) -> int:
        """Delete entries not notified again since they were judged; returns how many."""
        if not entries:
            return 0
        async with self._pool.connection() as conn:
            await conn.execute(_PURGE_TIMEOUT)
            cursor = await conn.execute(
                _FORGET,
                ([e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries]),
            )
            return cursor.rowcount
