"""The cache over a real Redis: values shared between instances, one origin load per key
across four processes (the Redis lease), a dead lease holder, Redis unreachable, and one
refresh-ahead reload of a hot key across four processes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import redis

from opsmesh_client.cache import AsyncCache, AsyncRedisStore, Cache, Namespace, RedisStore
from opsmesh_dev.infra.process import free_port

WORKER = Path(__file__).with_name("cache_worker.py")
API = Namespace("api", ttl_s=60, lease_s=10)


def run_id() -> str:
    return f"cache-test-{uuid.uuid4().hex[:8]}"


def test_an_instance_reads_what_another_wrote_and_delete_reaches_l2(cache_redis_url: str) -> None:
    run = run_id()
    one = Cache(RedisStore(cache_redis_url), [API], prefix=run)
    two = Cache(RedisStore(cache_redis_url), [API], prefix=run)
    three = Cache(RedisStore(cache_redis_url), [API], prefix=run)
    try:
        one.set("user:1", {"name": "Ada", "tags": ["a", "b"]}, namespace="api")
        assert two.get("user:1", namespace="api") == {"name": "Ada", "tags": ["a", "b"]}
        assert two.tiers.counts["api"].l2_hits == 1
        one.delete("user:1", namespace="api")
        assert three.get("user:1", namespace="api") is None
        ttl_ms = redis.Redis.from_url(cache_redis_url).pttl(f"{run}:v:api:user:1")
        assert ttl_ms == -2  # gone
        one.set("k", 1, namespace="api")
        ttl_ms = redis.Redis.from_url(cache_redis_url).pttl(f"{run}:v:api:k")
        # Redis keeps the value for ttl_s + stale_s, so it can still answer a failing loader.
        assert (API.ttl_s + API.stale_s - 5) * 1000 < ttl_ms <= (API.ttl_s + API.stale_s) * 1000
    finally:
        # Their invalidation listeners would otherwise outlive the test (and the session's
        # Redis), retrying to subscribe until the process exits.
        for cache in (one, two, three):
            cache.close()


async def test_the_async_cache_shares_values_with_the_sync_one(cache_redis_url: str) -> None:
    run = run_id()
    store = AsyncRedisStore(cache_redis_url)
    cache = AsyncCache(store, [API], prefix=run)
    sync_cache = Cache(RedisStore(cache_redis_url), [API], prefix=run)
    try:
        assert await cache.get_or_set("k", _origin, namespace="api") == [1, 2, 3]
        assert sync_cache.get("k", namespace="api") == [1, 2, 3]
    finally:
        sync_cache.close()
        await cache.aclose()
        await store.aclose()


async def _origin() -> list[int]:
    return [1, 2, 3]


def test_four_processes_stampeding_one_key_load_it_once(cache_redis_url: str) -> None:
    run = run_id()
    # Its own socket timeout, longer than the BLPOPs' (a default elsewhere may be shorter).
    client = redis.Redis.from_url(cache_redis_url, socket_timeout=90)
    processes, threads = 4, 8
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "stampede", cache_redis_url, run, str(threads)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for _ in range(processes):  # every worker is up before any starts
            assert client.blpop([f"{run}:ready"], timeout=60) is not None
        client.rpush(f"{run}:go", *([1] * processes))
        outputs = [json.loads(w.communicate(timeout=60)[0]) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert all(w.returncode == 0 for w in workers)
    assert client.get(f"{run}:loads") == b"1"
    assert [v for o in outputs for v in o["values"]] == [{"from": "origin"}] * processes * threads
    # The three processes that lost the lease waited for the holder's value.
    assert sum(o["waits"] for o in outputs) == processes - 1


def test_a_lease_left_by_a_dead_holder_expires_and_the_next_caller_loads(
    cache_redis_url: str,
) -> None:
    run = run_id()
    short = Namespace("api", ttl_s=60, lease_s=0.5)
    client = redis.Redis.from_url(cache_redis_url)
    client.set(f"{run}:lease:api:k", "crashed-process", px=500)
    cache = Cache(RedisStore(client), [short], prefix=run)
    try:
        assert cache.get_or_set("k", lambda: "mine", namespace="api") == "mine"
        assert cache.tiers.counts["api"].lease_waits == 1
        assert client.get(f"{run}:lease:api:k") is None  # released after the load
    finally:
        cache.close()


def test_an_unreachable_redis_degrades_to_the_loader() -> None:
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    store = RedisStore(dead)
    cache = Cache(store, [API])
    loads: list[int] = []

    def origin() -> int:
        loads.append(1)
        return 5

    try:
        assert cache.get_or_set("k", origin, namespace="api") == 5
        # Not subscribed to invalidations, so L1 cannot be trusted: each call loads.
        assert cache.get_or_set("k", origin, namespace="api") == 5
        assert len(loads) == 2
        assert store.errors >= 4  # L2 miss, lease, write, publish
    finally:
        cache.close()
    # Without invalidation L1 is trusted (staleness up to ttl_s is accepted) and serves.
    local = Cache(RedisStore(dead), [API], invalidation=False)
    assert local.get_or_set("k", origin, namespace="api") == 5
    assert local.get("k", namespace="api") == 5
    assert len(loads) == 3


def test_a_write_reaches_the_l1_of_every_other_process(cache_redis_url: str) -> None:
    run = run_id()
    client = redis.Redis.from_url(cache_redis_url, socket_timeout=90)
    hour = Namespace("api", ttl_s=3600)
    writer = Cache(RedisStore(client), [hour], prefix=run)
    try:
        writer.set("k", "v1", namespace="api")
        watchers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), "watch", cache_redis_url, run],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        try:
            for _ in watchers:
                assert client.blpop([f"{run}:ready"], timeout=60) is not None
            writer.set("k", "v2", namespace="api")
            outputs = [json.loads(w.communicate(timeout=90)[0]) for w in watchers]
        finally:
            for w in watchers:
                if w.poll() is None:
                    w.kill()
                    w.wait()
    finally:
        writer.close()
    # Each watcher read "v1" from its L1 (ttl one hour) until the invalidation arrived.
    assert [o["value"] for o in outputs] == ["v2"] * 3
    assert all(o["l1_hits"] > 0 for o in outputs)


def test_refresh_ahead_reloads_a_hot_key_once_across_four_processes(cache_redis_url: str) -> None:
    run = run_id()
    client = redis.Redis.from_url(cache_redis_url, socket_timeout=90)
    # 20 s left of a 60 s TTL: every read is in the last half, the refresh-ahead window.
    seed = Cache(RedisStore(client), [API], prefix=run, invalidation=False)
    seed.set("hot", "v0", namespace="api", ttl_s=20)
    seed.close()
    processes, threads = 4, 4
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "refresh", cache_redis_url, run, str(threads)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for _ in range(processes):
            assert client.blpop([f"{run}:ready"], timeout=60) is not None
        client.rpush(f"{run}:go", *([1] * processes))
        for _ in range(processes * threads):  # every reader was answered once...
            assert client.blpop([f"{run}:first-read"], timeout=60) is not None
        client.rpush(f"{run}:release", 1)  # ...before the one reload may finish
        outputs = [json.loads(w.communicate(timeout=90)[0]) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert all(w.returncode == 0 for w in workers)
    assert client.get(f"{run}:reloads") == b"1"
    assert sum(o["refreshes"] for o in outputs) == 1
    per_thread = [values for o in outputs for values in o["values"]]
    # Every reader got the current value while the reload ran, then the reloaded one.
    assert all(values[0] == "v0" and values[-1] == "v1" for values in per_thread)
    assert all(set(values) == {"v0", "v1"} for values in per_thread)
