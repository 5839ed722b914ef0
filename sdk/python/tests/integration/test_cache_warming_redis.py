"""Warming over a real Redis: a run's most-read keys are kept in Redis on close, and the
next run warms exactly those through the namespace's loader."""

from __future__ import annotations

import uuid

import pytest
import redis

from opsmesh_client.cache import Cache, Namespace, RedisStore
from opsmesh_client.cache.warming import RANKING_TTL_S, warm_from_last_run

pytestmark = pytest.mark.integration

API = Namespace("api", ttl_s=60, warm_top_keys=3)


def test_the_most_read_keys_of_a_run_are_warmed_by_the_next(cache_redis_url: str) -> None:
    run = f"cache-warm-{uuid.uuid4().hex[:8]}"
    with redis.Redis.from_url(cache_redis_url) as client:
        warm_next_run(client, run)


def warm_next_run(client: redis.Redis, run: str) -> None:
    first = Cache(RedisStore(client), [API], prefix=run)
    try:
        for i in range(20):  # key i is read i + 1 times: 19, 18 and 17 are the top three
            for _ in range(i + 1):
                first.get_or_set(f"item:{i}", lambda i=i: {"i": i}, namespace="api")
    finally:
        first.close()
    ranking = f"{run}:top:api"
    assert client.zrange(ranking, 0, -1, desc=True) == [b"item:19", b"item:18", b"item:17"]
    assert 0 < client.pttl(ranking) <= RANKING_TTL_S * 1000
    client.delete(*[f"{run}:v:api:item:{i}" for i in range(20)])  # a cold L2

    second = Cache(RedisStore(client), [API], prefix=run)
    loaded: list[str] = []

    def loader(key: str) -> dict[str, int]:
        loaded.append(key)
        return {"i": int(key.split(":")[1])}

    try:
        assert warm_from_last_run(second, "api", loader).warmed == 3
        assert loaded == ["item:19", "item:18", "item:17"]
        assert client.get(f"{run}:v:api:item:18") is not None  # in L2 for every instance
        assert second.get("item:17", namespace="api") == {"i": 17}
    finally:
        second.close()
