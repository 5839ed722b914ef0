"""Write-behind over a real Redis: thousands of acknowledged writes are all in Redis after
close, batches go out on their own while the application writes, and another instance's
L1 drops its old value when the batch carrying the new one lands."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from opsmesh_client.cache import AsyncCache, AsyncRedisStore, Cache, Namespace, RedisStore
from opsmesh_client.cache.settings import Strategy
from opsmesh_dev.infra.process import wait_until

pytestmark = pytest.mark.integration

BEHIND = Namespace(
    "w",
    ttl_s=600,
    strategy=Strategy.WRITE_BEHIND,
    behind_batch=200,
    behind_max_pending=20_000,
    behind_interval_s=0.05,
)


@pytest.fixture
def client(cache_redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(cache_redis_url) as client:
        yield client


def run_id() -> str:
    return f"cache-wb-{uuid.uuid4().hex[:8]}"


def test_every_acknowledged_write_is_in_redis_after_close(client: redis.Redis) -> None:
    run = run_id()
    cache = Cache(RedisStore(client), [BEHIND], prefix=run)
    writes = 5_000
    try:
        for i in range(writes):
            cache.set(f"k{i}", {"i": i}, namespace="w")
        assert cache.get("k4999", namespace="w") == {"i": 4999}  # read back at once
    finally:
        cache.close()
    reader = Cache(RedisStore(client), [BEHIND], prefix=run)
    try:
        keys = [f"{run}:v:w:k{i}" for i in range(writes)]
        assert all(data is not None for data in client.mget(keys))
        assert [reader.get(f"k{i}", namespace="w") for i in (0, 2500, 4999)] == [
            {"i": 0},
            {"i": 2500},
            {"i": 4999},
        ]
        assert cache.write_behind is not None
        assert cache.write_behind.fallbacks == 0
        assert len(cache.write_behind) == 0
    finally:
        reader.close()


def test_batches_are_sent_while_the_application_runs(client: redis.Redis) -> None:
    run = run_id()
    cache = Cache(RedisStore(client), [BEHIND], prefix=run)
    try:
        cache.set("k", "v", namespace="w")
        # No close: the sender's interval sends it.
        wait_until(
            lambda: client.get(f"{run}:v:w:k") is not None, timeout_s=30, what="the batch in Redis"
        )
    finally:
        cache.close()


def test_another_instances_l1_sees_the_write_once_its_batch_lands(client: redis.Redis) -> None:
    run = run_id()
    writer = Cache(RedisStore(client), [BEHIND], prefix=run)
    reader = Cache(RedisStore(client), [BEHIND], prefix=run)
    try:
        assert writer.tiers.subscribed.wait(30)
        assert reader.tiers.subscribed.wait(30)
        writer.set("k", "old", namespace="w")
        wait_until(
            lambda: reader.get("k", namespace="w") == "old", timeout_s=30, what="the old value"
        )
        hits = reader.tiers.counts["w"].l1_hits
        assert reader.get("k", namespace="w") == "old"
        assert reader.tiers.counts["w"].l1_hits == hits + 1  # held in the reader's L1
        writer.set("k", "new", namespace="w")
        wait_until(
            lambda: reader.get("k", namespace="w") == "new", timeout_s=30, what="the new value"
        )
    finally:
        writer.close()
        reader.close()


async def test_the_async_cache_sends_every_write_on_aclose(cache_redis_url: str) -> None:
    run = run_id()
    store = AsyncRedisStore(cache_redis_url)
    cache = AsyncCache(store, [BEHIND], prefix=run)
    await cache.start()
    try:
        for i in range(1_000):
            await cache.set(f"k{i}", i, namespace="w")
    finally:
        await cache.aclose()
        await store.aclose()
    with redis.Redis.from_url(cache_redis_url) as client:
        keys = [f"{run}:v:w:k{i}" for i in range(1_000)]
        assert all(d is not None for d in client.mget(keys))
