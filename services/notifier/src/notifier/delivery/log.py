"""The delivery log (PostgreSQL) and the in-flight claim (Redis).

Exactly once per key: a key with a log row is never sent again. The remaining window is
between a successful send and its log row (a crash there); it is as short as one
INSERT, and receivers close it with ``webhook-id`` / PagerDuty ``dedup_key``.
The Redis claim stops two replicas sending the same key at once during a rebalance.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

_CLAIM_TTL_MS = 120_000


class DeliveryLog:
    def __init__(self, pool: AsyncConnectionPool, redis: aioredis.Redis) -> None:
        self._pool = pool
        self._redis = redis

    async def delivered(self, keys: Iterable[str]) -> set[str]:
        """The keys already delivered; a key that failed before may be tried again (a DLQ
        replay), so only successful deliveries count."""
        wanted = list(keys)
        if not wanted:
            return set()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT idempotency_key FROM notifier.delivery_log"
                " WHERE idempotency_key = ANY(%s) AND outcome = 'delivered'",
                (wanted,),
            )
            return {row[0] for row in await cursor.fetchall()}

    async def claim(self, key: str, owner: str) -> bool:
        return bool(
            await self._redis.set(f"notifier:claim:{key}", owner, nx=True, px=_CLAIM_TTL_MS)
        )

    async def release(self, key: str) -> None:
        await self._redis.delete(f"notifier:claim:{key}")

    async def record(
        self,
        *,
        key: str,
        receiver: str,
        channel: str,
        outcome: str,
        attempts: int,
        status_code: int | None,
        error: str | None,
    ) -> bool:
        """Record the outcome; a delivered key is final and never overwritten, a failed one
        is replaced by a later attempt. False if the key had already been delivered."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO notifier.delivery_log AS d"
                " (idempotency_key, receiver, channel, outcome, attempts, status_code, error)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (idempotency_key) DO UPDATE SET"
                " outcome = EXCLUDED.outcome, attempts = d.attempts + EXCLUDED.attempts,"
                " status_code = EXCLUDED.status_code, error = EXCLUDED.error, finished_at = now()"
                " WHERE d.outcome <> 'delivered'",
                (key, receiver, channel, outcome, attempts, status_code, error),
            )
            return cursor.rowcount == 1
