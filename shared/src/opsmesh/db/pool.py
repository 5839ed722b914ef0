"""An async psycopg connection pool opened (and checked) at start."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


async def open_pool(
    dsn: str, *, name: str, min_size: int = 1, max_size: int = 8
) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        kwargs={"application_name": name, "autocommit": False},
    )
    await pool.open(wait=True, timeout=30)
    return pool


async def ping(pool: AsyncConnectionPool) -> None:
    async with pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")
