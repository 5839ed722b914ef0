"""An async psycopg connection pool opened (and checked) at start."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

# psycopg_pool replaces a lost connection with attempts 1, 2, 4, 8, 16, 32 ... s apart
# (uncapped) until ``reconnect_timeout`` (5 min by default), and a pool whose every slot
# is waiting on such an attempt grows no new one: after a 35 s outage the next attempt
# came up to ~30 s after PostgreSQL was back (measured: ping 22.4 s after the start with
# the default, 0.4 s with 5 s). Giving a slot up after this long caps the wait instead:
# the slot is freed, and the next caller that needs a connection starts a fresh attempt.
RECONNECT_GIVE_UP_S = 5.0


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
        reconnect_timeout=RECONNECT_GIVE_UP_S,
    )
    await pool.open(wait=True, timeout=30)
    return pool


async def ping(pool: AsyncConnectionPool) -> None:
    async with pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")
