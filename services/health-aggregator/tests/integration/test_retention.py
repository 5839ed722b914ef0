"""health-aggregator's retention over real PostgreSQL, in simulated time: status changes
older than the retention go in bounded batches; younger ones, and the current state of
every registered check, stay. A deregistered check leaves every fleet view at its next
refresh and its row goes once it was deregistered for as long again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from health_aggregator.core.checks import ChangeCause, CheckState, StatusChange
from health_aggregator.core.policy import Policy
from health_aggregator.pipeline.view import HealthView
from health_aggregator.storage.checks import CheckStore
from health_aggregator.storage.retention import purge_jobs
from opsmesh.db.retention import Purger, PurgeStop, RetentionMetrics, days
from opsmesh.events.health import HealthStatus
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration

T0 = 1_000_000_000.0  # 2001: older than every row other tests write


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=2, open=False) as p:
        yield p


def check(service: str, status: HealthStatus, at: float) -> CheckState:
    return CheckState(service, "i-1", "db", status, True, None, at, at + 30, 0)


async def test_status_history_older_than_the_retention_goes_in_batches(
    pool: AsyncConnectionPool,
) -> None:
    store = CheckStore(pool)
    service = f"svc-{uuid.uuid4().hex[:8]}"
    old_times = [T0 - days(31) - i for i in range(25)]
    young_times = [T0 - days(29), T0 - 60]
    changes = [
        StatusChange(
            check(service, HealthStatus.FAIL, at), HealthStatus.PASS, ChangeCause.REPORTED, at
        )
        for at in old_times + young_times
    ]
    current = check(service, HealthStatus.FAIL, T0 - days(40))  # reported long ago
    await store.save([current], changes)
    registry = CollectorRegistry()
    purger = Purger(
        purge_jobs(pool, history_retention_days=30, deregister_after_days=1),
        clock=FakeClock(T0),
        metrics=RetentionMetrics(registry),
        interval_s=600,
        batch_rows=10,
    )

    report, _ = await purger.run_once()

    assert (report.rows, report.batches, report.stopped) == (25, 3, PurgeStop.DONE)
    history = await store.history(service, 100)
    assert sorted(h["at"] for h in history) == pytest.approx(sorted(young_times))
    assert [c.key for c in await store.of_service(service)] == [current.key], (
        "the current state of a check is never purged"
    )
    assert (
        registry.get_sample_value(
            "opsmesh_retention_purged_rows_total", {"table": "health_aggregator.status_history"}
        )
        == 25
    )


async def test_a_deregistered_check_leaves_the_view_then_the_table(
    pool: AsyncConnectionPool,
) -> None:
    store = CheckStore(pool)
    service = f"svc-{uuid.uuid4().hex[:8]}"
    alone = f"solo-{uuid.uuid4().hex[:8]}"  # a service whose only check goes
    gone = CheckState(service, "gone", "db", HealthStatus.FAIL, True, None, T0, T0 + 30, 0)
    alive = CheckState(service, "alive", "db", HealthStatus.PASS, True, None, T0, T0 + 30, 0)
    solo = CheckState(alone, "i-1", "db", HealthStatus.FAIL, True, None, T0, T0 + 30, 0)
    await store.save([gone, alive, solo], [])
    view = HealthView(
        store,
        clock=FakeClock(T0),
        policies={},
        default_policy=Policy.ALL,
        service_id="test",
        version="0",
    )
    await view.refresh()
    health = view.service(service)
    assert health is not None
    assert health.status is HealthStatus.FAIL
    assert view.service(alone) is not None

    deregistered_at = T0 + 30 + days(1) + 1
    changes = [
        StatusChange(s, s.status, ChangeCause.DEREGISTERED, deregistered_at) for s in (gone, solo)
    ]
    await store.save([], changes, [(gone, deregistered_at), (solo, deregistered_at)])
    await view.refresh()

    health = view.service(service)
    assert health is not None
    assert (health.status, health.total) == (HealthStatus.PASS, 1)
    assert view.service(alone) is None, "a service whose every check went leaves the view"
    assert alone not in view.fleet()[1].decode()
    assert [c.instance for c in await store.of_service(service)] == ["alive"]
    assert {c.key for c in await store.load([0])} & {gone.key, solo.key} == set()
    history = await store.history(service, 10)
    assert history[0]["cause"] == "deregistered"

    # The same check reporting again is registered again.
    back = CheckState(service, "gone", "db", HealthStatus.PASS, True, None, T0 + 99, T0 + 129, 0)
    await store.save([back], [])
    await view.refresh()
    assert sorted(c.instance for c in await store.of_service(service)) == ["alive", "gone"]
    health = view.service(service)
    assert health is not None
    assert health.total == 2

    # A mark older than the retention goes with its row; a younger one and the rest stay.
    purger = Purger(
        purge_jobs(pool, history_retention_days=30, deregister_after_days=1),
        clock=FakeClock(deregistered_at + days(1) + 1),
        metrics=RetentionMetrics(CollectorRegistry()),
        interval_s=600,
    )
    reports = {r.table: r for r in await purger.run_once()}
    assert reports["health_aggregator.checks"].rows >= 1
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT service, instance FROM health_aggregator.checks WHERE service = ANY(%s)",
            ([service, alone],),
        )
        left = sorted(await cursor.fetchall())
    assert left == [(service, "alive"), (service, "gone")]
