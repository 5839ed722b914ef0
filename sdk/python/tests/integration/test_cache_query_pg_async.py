"""The asyncio L3 over a real PostgreSQL and Redis, two instances: one's result answers
the other, and a committed write from a plain connection reaches both."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from opsmesh_client.cache import AsyncCache, AsyncRedisStore, Namespace
from opsmesh_client.cache.query import install_triggers
from opsmesh_client.cache.query_aio import AsyncQueryCache
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.integration

QUERY = Namespace("query", ttl_s=300)
BY_ID = "SELECT name FROM authors WHERE id = %s"


async def test_two_async_instances_share_results_and_see_a_committed_write(
    cache_redis_url: str, cache_pg_dsn: str
) -> None:
    with psycopg.connect(cache_pg_dsn, autocommit=True) as admin:
        install_triggers(admin, ["authors"])
    prefix = f"cache-l3a-{uuid.uuid4().hex[:8]}"
    stores = [AsyncRedisStore(cache_redis_url) for _ in range(2)]
    caches = [AsyncCache(store, [QUERY], prefix=prefix) for store in stores]
    l3s = [AsyncQueryCache(cache, cache_redis_url, cache_pg_dsn) for cache in caches]
    conns = [await psycopg.AsyncConnection.connect(cache_pg_dsn, autocommit=True) for _ in l3s]
    try:
        for cache, l3 in zip(caches, l3s, strict=True):
            await cache.start()
            await l3.start()
            await asyncio.wait_for(l3.watcher.listening.wait(), 30)
        one, other = l3s
        assert await one.fetch_all(conns[0], BY_ID, [7]) == [("author 7",)]
        assert await other.fetch_all(conns[1], BY_ID, [7]) == [("author 7",)]
        assert [c.tiers.counts["query"].loads for c in caches] == [1, 0]
        before = await one.generations.read(frozenset({"authors"}))
        async with await psycopg.AsyncConnection.connect(cache_pg_dsn, autocommit=True) as w:
            await w.execute("UPDATE authors SET name = 'renamed' WHERE id = 7")

        async def bumped() -> bool:
            return await one.generations.read(frozenset({"authors"})) != before

        await eventually(bumped, until=bool, what="the table's generation bumped")
        assert await other.fetch_all(conns[1], BY_ID, [7]) == [("renamed",)]
        assert one.bypassed == other.bypassed == 0
    finally:
        for conn in conns:
            await conn.close()
        for l3, cache, store in zip(l3s, caches, stores, strict=True):
            await l3.aclose()
            await cache.aclose()
            await store.aclose()
