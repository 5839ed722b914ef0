"""Slack message references in PostgreSQL: a group's message survives restarts, so its
resolution still updates it."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


class PgMessageRefs:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def get(self, key: str) -> tuple[str, str] | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT channel, ts FROM notifier.slack_messages WHERE ref = %s", (key,)
            )
            row = await cursor.fetchone()
        return (str(row[0]), str(row[1])) if row else None

    async def put(self, key: str, channel: str, ts: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO notifier.slack_messages (ref, channel, ts) VALUES (%s, %s, %s)"
                " ON CONFLICT (ref) DO UPDATE SET channel = EXCLUDED.channel, ts = EXCLUDED.ts,"
                " created_at = now()",
                (key, channel, ts),
            )

    async def drop(self, key: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM notifier.slack_messages WHERE ref = %s", (key,))
