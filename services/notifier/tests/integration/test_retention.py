"""The notifier's retention over real PostgreSQL and Redis, in simulated time: delivered
keys are remembered (and still deduplicate) for the whole retention, then forgotten in
bounded batches; Slack message references likewise."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from notifier.delivery.log import DeliveryLog, Outcome
from notifier.delivery.refs import PgMessageRefs
from notifier.delivery.retention import purge_jobs
from opsmesh.db.retention import Purger, PurgeStop, RetentionMetrics, days
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration

T0 = 1_000_000_000.0  # 2001: older than every row other tests write


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=2, open=False) as p:
        yield p


@pytest.fixture
async def redis(infra: Endpoints) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(infra.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def purger(pool: AsyncConnectionPool, registry: CollectorRegistry, batch_rows: int) -> Purger:
    return Purger(
        purge_jobs(pool, delivery_retention_days=35),
        clock=FakeClock(T0),
        metrics=RetentionMetrics(registry),
        interval_s=600,
        batch_rows=batch_rows,
    )


async def finished_at(pool: AsyncConnectionPool, keys: dict[str, float]) -> None:
    """Backdate rows: the log stamps them with the database's now()."""
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "UPDATE notifier.delivery_log SET finished_at = to_timestamp(%s)"
            " WHERE idempotency_key = %s",
            [(at, key) for key, at in keys.items()],
        )


async def test_delivered_keys_deduplicate_for_the_retention_then_are_forgotten(
    pool: AsyncConnectionPool, redis: aioredis.Redis
) -> None:
    log = DeliveryLog(pool, redis, claim_ttl_s=60)
    run = uuid.uuid4().hex[:8]
    old = [f"old-{run}-{i}" for i in range(25)]
    young = f"young-{run}"
    await log.record_many(
        [Outcome(k, "webhook-0", "r", "webhook-0", "delivered", 1, 200, None) for k in old]
        + [Outcome(young, "webhook-0", "r", "webhook-0", "delivered", 1, 200, None)]
    )
    await finished_at(pool, {**dict.fromkeys(old, T0 - days(36)), young: T0 - days(34)})
    pairs = [(k, "webhook-0") for k in [*old, young]]
    assert await log.delivered(pairs) == set(pairs), "remembered until purged"

    registry = CollectorRegistry()
    reports = await purger(pool, registry, batch_rows=10).run_once()

    delivery = next(r for r in reports if r.table == "notifier.delivery_log")
    assert (delivery.rows, delivery.batches, delivery.stopped) == (25, 3, PurgeStop.DONE)
    assert await log.delivered(pairs) == {(young, "webhook-0")}, (
        "34 days old: still deduplicates; 36 days old: forgotten"
    )
    assert (
        registry.get_sample_value(
            "opsmesh_retention_purged_rows_total", {"table": "notifier.delivery_log"}
        )
        == 25
    )


async def test_slack_message_refs_of_long_silent_groups_are_forgotten(
    pool: AsyncConnectionPool,
) -> None:
    refs = PgMessageRefs(pool)
    old, young = f"ops|slack-0|old-{uuid.uuid4().hex}", f"ops|slack-0|young-{uuid.uuid4().hex}"
    await refs.put(old, "C1", "1.1")
    await refs.put(young, "C1", "1.2")
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "UPDATE notifier.slack_messages SET created_at = to_timestamp(%s) WHERE ref = %s",
            [(T0 - days(40), old), (T0 - days(1), young)],
        )

    await purger(pool, CollectorRegistry(), batch_rows=10).run_once()

    assert await refs.get(old) is None
    assert await refs.get(young) == ("C1", "1.2")
