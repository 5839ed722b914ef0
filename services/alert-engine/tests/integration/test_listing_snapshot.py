"""The API's listing read (``ActiveAlertStore.snapshot``) against real PostgreSQL: every alert
row and silence in one read, and a read PostgreSQL holds up fails within its bound (the
state then answers from memory) instead of hanging the request."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from alert_engine.core.alerts import StoredAlert
from alert_engine.core.matchers import Matcher
from alert_engine.core.silences import Silence
from alert_engine.storage.active_alerts import ActiveAlertStore
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=2, open=False) as p:
        yield p


async def test_a_snapshot_holds_every_alert_row_and_silence(pool: AsyncConnectionPool) -> None:
    store = ActiveAlertStore(pool)
    run = uuid.uuid4().hex[:10]
    alerts = [
        StoredAlert(f"{run}-{i}", {"alertname": "Snap", "run": run, "i": str(i)}, {}, T0, None, T0)
        for i in range(3)
    ]
    silence = Silence(
        f"{run}-s", (Matcher.from_api("run", run, False, True),), T0, T0 + 60, "me", "", T0
    )
    await store.save(alerts)
    await store.save_silences([silence])
    try:
        rows, silences = await store.snapshot(2.0)
        assert {a.fingerprint: a for a in rows if a.labels.get("run") == run} == {
            a.fingerprint: a for a in alerts
        }
        assert [s for s in silences if s.id == silence.id] == [silence]
    finally:
        await store.delete([(a.fingerprint, a.updated_at) for a in alerts])
        await store.delete_silences([silence.id])


async def test_a_snapshot_postgres_holds_up_fails_within_its_bound(
    infra: Endpoints, pool: AsyncConnectionPool
) -> None:
    store = ActiveAlertStore(pool)
    async with await psycopg.AsyncConnection.connect(infra.pg_dsn) as blocker:
        # Another transaction holds the table: reads wait on its lock.
        await blocker.execute("LOCK TABLE alert_engine.stored_alerts IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(store.snapshot(0.3), timeout=10)  # a guard, not the bound
        waited = time.monotonic() - started
        await blocker.rollback()
    assert waited < 5, f"the statement timeout bounds the read (took {waited:.1f} s)"
