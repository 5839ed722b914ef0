"""health-aggregator's history retention over real PostgreSQL, in simulated time: status
changes older than the retention go in bounded batches; younger ones, and the current
state of every check, stay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from health_aggregator.core.book import ChangeCause, CheckState, StatusChange
from health_aggregator.storage.checks import CheckStore
from health_aggregator.storage.retention import purge_jobs
from opsmesh.clock import FakeClock
from opsmesh.db.retention import Purger, PurgeStop, RetentionMetrics, days
from opsmesh.devinfra import Endpoints
from opsmesh.events.health import HealthStatus

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
        purge_jobs(pool, history_retention_days=30),
        clock=FakeClock(T0),
        metrics=RetentionMetrics(registry),
        interval_s=600,
        batch_rows=10,
    )

    (report,) = await purger.run_once()

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
