"""Rule groups created through the REST API, stored as the YAML they were given."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


class RuleGroupStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def load(self) -> dict[str, str]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT name, source FROM alert_engine.rule_groups")
            return {row[0]: row[1] for row in await cursor.fetchall()}

    async def version(self) -> tuple[int, float]:
        """Changes whenever a group is added, replaced or deleted."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*), coalesce(extract(epoch FROM max(updated_at)), 0)::float8"
                " FROM alert_engine.rule_groups"
            )
            row = await cursor.fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    async def put(self, name: str, source: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO alert_engine.rule_groups (name, source) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET source = EXCLUDED.source, updated_at = now()",
                (name, source),
            )

    async def delete(self, name: str) -> bool:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM alert_engine.rule_groups WHERE name = %s", (name,)
            )
            return cursor.rowcount == 1
