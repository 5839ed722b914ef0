"""A pool whose every connection was lost in a PostgreSQL outage gives its slots up
(``RECONNECT_GIVE_UP_S``) instead of retrying each with a backoff that doubles without a
cap, so the first caller after the outage connects at once rather than waiting for the
next scheduled attempt (measured: 22 s after the server was back with psycopg_pool's
default five minutes, 0.4 s with the cap)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fixtures.kafka import eventually

from opsmesh.db.pool import RECONNECT_GIVE_UP_S, open_pool, ping
from opsmesh_dev.infra.postgres import PostgresServer

pytestmark = pytest.mark.integration

SLOTS = 4


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    # Not the session's server: this test stops it. Not under tmp_path: the server runs
    # as its own user when we are root.
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-pool-"))
    workdir.chmod(0o755)
    server = PostgresServer(workdir / "postgres")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _use(pool, count: int) -> None:  # type: ignore[no-untyped-def]
    async def one() -> None:
        async with pool.connection(timeout=10) as conn:
            await conn.execute("SELECT pg_sleep(0.2)")

    await asyncio.gather(*(one() for _ in range(count)))


async def test_slots_lost_in_an_outage_are_given_up_and_reopened_on_demand(
    own_postgres: PostgresServer,
) -> None:
    pool = await open_pool(own_postgres.dsn, name="reconnect", max_size=SLOTS)
    try:
        await _use(pool, SLOTS)  # every slot holds a connection
        assert pool.get_stats()["pool_size"] == SLOTS
        await asyncio.to_thread(own_postgres.stop)
        # Callers find the connections broken; each slot retries, then gives up.
        for _ in range(SLOTS):
            with contextlib.suppress(Exception):  # the outage: expected to fail
                await ping(pool)
        await eventually(
            _size(pool),
            until=lambda size: size == 0,
            timeout_s=RECONNECT_GIVE_UP_S * 6,
            what="every slot given up",
        )
        await asyncio.to_thread(own_postgres.start)
        await ping(pool)  # a fresh attempt for this caller, not a backoff scheduled earlier
        await _use(pool, SLOTS)
    finally:
        await pool.close()


def _size(pool):  # type: ignore[no-untyped-def]
    async def probe() -> int:
        return int(pool.get_stats()["pool_size"])

    return probe
