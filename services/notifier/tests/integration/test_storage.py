"""The notifier's storage over real PostgreSQL and Redis: claims, Slack message refs, and
the daily summary's read of alert-engine's history."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from notifier.channels.slack import message_ref
from notifier.delivery.log import DeliveryLog, Outcome
from notifier.delivery.refs import PgMessageRefs
from notifier.summary.job import load_day, summary_message
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


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


async def test_claims_refuse_other_owners_but_not_a_restarted_self(
    pool: AsyncConnectionPool, redis: aioredis.Redis
) -> None:
    log = DeliveryLog(pool, redis, claim_ttl_s=60)
    key = uuid.uuid4().hex
    pairs = [(key, "webhook-0"), (key, "slack-0")]
    assert await log.claim_many(pairs, "notifier-a") == [True, True]
    assert await log.claim_many(pairs, "notifier-b") == [False, False]
    assert await log.claim_many(pairs, "notifier-a") == [True, True]  # killed and back
    await log.record_many([Outcome(key, "webhook-0", "r", "webhook-0", "delivered", 1, 200, None)])
    # Recording releases the claim and the pair reads as delivered from then on.
    assert await log.claim_many([(key, "webhook-0")], "notifier-b") == [True]
    assert await log.delivered(pairs) == {(key, "webhook-0")}


async def test_a_delivered_row_is_never_overwritten(
    pool: AsyncConnectionPool, redis: aioredis.Redis
) -> None:
    log = DeliveryLog(pool, redis, claim_ttl_s=60)
    key = uuid.uuid4().hex
    await log.record_many([Outcome(key, "email-0", "r", "email-0", "failed", 3, 451, "later")])
    await log.record_many([Outcome(key, "email-0", "r", "email-0", "delivered", 1, 250, None)])
    await log.record_many([Outcome(key, "email-0", "r", "email-0", "failed", 1, 554, "x")])
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT outcome, attempts FROM notifier.delivery_log WHERE idempotency_key = %s",
            (key,),
        )
        assert await cursor.fetchall() == [("delivered", 4)]


async def test_slack_message_refs_survive_in_postgres(pool: AsyncConnectionPool) -> None:
    refs = PgMessageRefs(pool)
    # A group key over 64 labels of 1 KiB: far beyond a btree entry, the ref is a digest.
    labels = ",".join(f'l{i}="{secrets.token_hex(512)}"' for i in range(64))
    key = message_ref("ops", "slack-0", f"{{}}:{{{labels}}}")
    assert key == message_ref("ops", "slack-0", f"{{}}:{{{labels}}}")
    assert key != message_ref("ops", "slack-1", f"{{}}:{{{labels}}}")
    assert await refs.get(key) is None
    await refs.put(key, "C1", "1700000000.0001")
    assert await PgMessageRefs(pool).get(key) == ("C1", "1700000000.0001")
    await refs.drop(key)
    assert await refs.get(key) is None


async def test_daily_summary_reads_alert_engine_history(pool: AsyncConnectionPool) -> None:
    rule = f"Rule<{uuid.uuid4().hex[:6]}>"
    start = 2_000_000_000.0  # a day of its own, far from other tests' rows
    rows = [
        ("f1", rule, "pending", "firing", start + 10),
        ("f2", rule, "pending", "firing", start + 20),
        ("f1", rule, "firing", "resolved", start + 130),
        ("f0", rule, "firing", "resolved", start + 50),  # opened the day before
    ]
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO alert_engine.alert_history"
            " (fingerprint, rule, labels, previous, state, at)"
            " VALUES (%s, %s, %s, 'pending', 'firing', to_timestamp(%s))",
            ("f0", rule, json.dumps({}), start - 3600),
        )
        for fingerprint, name, previous, state, at in rows:
            await conn.execute(
                "INSERT INTO alert_engine.alert_history"
                " (fingerprint, rule, labels, previous, state, at)"
                " VALUES (%s, %s, %s, %s, %s, to_timestamp(%s))",
                (fingerprint, name, json.dumps({"alertname": name}), previous, state, at),
            )
    summary = await load_day(pool, start, start + 86_400)
    assert (summary.opened, summary.resolved, summary.still_firing) == (2, 2, 1)
    assert summary.noisiest[0].rule == rule
    assert summary.max_resolve_s == pytest.approx(3650.0)
    message = summary_message(summary, sender="opsmesh@example.com", recipients=["a@example.com"])
    html = message.get_body(("html",))
    assert html is not None
    assert f"{rule[:4]}&lt;" in html.get_content()  # rule names are escaped in HTML
    assert "2 opened, 2 resolved" in message["Subject"]
