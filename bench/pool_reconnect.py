"""How soon a busy PostgreSQL pool answers again after an outage.

``uv run python -m bench.pool_reconnect [outage_s]`` starts its own PostgreSQL, keeps
eight workers using an eight-connection pool (a query every 0.2 s each, as a service's
consumers and background jobs do), stops the server for ``outage_s`` (default 35, longer
than the pools' 30 s wait), starts it again and reports the seconds from that start to
the first successful ``ping`` — with psycopg_pool's default ``reconnect_timeout`` (five
minutes of attempts whose interval doubles without a cap) and with opsmesh's
``RECONNECT_GIVE_UP_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from opsmesh.db.pool import RECONNECT_GIVE_UP_S, ping
from opsmesh_dev.infra.postgres import PostgresServer

WORKERS = 8
PSYCOPG_DEFAULT_S = 300.0


async def back_after(server: PostgresServer, reconnect_timeout_s: float, outage_s: float) -> float:
    pool = AsyncConnectionPool(
        server.dsn,
        min_size=1,
        max_size=WORKERS,
        open=False,
        reconnect_timeout=reconnect_timeout_s,
    )
    await pool.open(wait=True, timeout=30)
    stop = asyncio.Event()

    async def worker() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # the outage
                async with pool.connection(timeout=30) as conn:
                    await conn.execute("SELECT pg_sleep(0.05)")
            await asyncio.sleep(0.2)

    workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    try:
        await asyncio.sleep(2)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(outage_s)
        await asyncio.to_thread(server.start)
        started = time.monotonic()
        while True:
            try:
                await ping(pool)
            except Exception:  # not back yet
                await asyncio.sleep(0.1)
                continue
            return time.monotonic() - started
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await pool.close()


def start_postgres() -> tuple[PostgresServer, Path]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    workdir.chmod(0o755)  # the server runs as its own user when we are root
    server = PostgresServer(workdir / "postgres")
    server.start()
    return server, workdir


async def main(outage_s: float) -> None:
    server, workdir = start_postgres()
    try:
        for label, timeout in (
            ("psycopg_pool default", PSYCOPG_DEFAULT_S),
            ("RECONNECT_GIVE_UP_S", RECONNECT_GIVE_UP_S),
        ):
            seconds = await back_after(server, timeout, outage_s)
            print(
                f"{label} (reconnect_timeout {timeout:g} s), {outage_s:g} s outage: "
                f"ping answers {seconds:.1f} s after PostgreSQL started",
                flush=True,
            )
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # every failed attempt warns
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 35.0))
