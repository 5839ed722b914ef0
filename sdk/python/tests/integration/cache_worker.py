"""One application process of the multi-process cache tests (run as a script).

python cache_worker.py stampede REDIS_URL RUN THREADS
    waits for the go signal (BLPOP), then THREADS threads call get_or_set on one key
    whose loader counts its calls in Redis and takes a while; prints the values got.

python cache_worker.py refresh REDIS_URL RUN THREADS
    THREADS threads read a key in its refresh-ahead window with get_or_set until they see
    the reloaded value; the reload (once across the processes) waits until the test
    releases it, after every thread's first read; prints each thread's values.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import redis

from opsmesh_client.cache import Cache, Namespace, RedisStore

LOAD_S = 0.3  # the origin's latency: long enough that every caller arrives during it


def stampede(url: str, run: str, threads: int) -> None:
    client = redis.Redis.from_url(url, socket_timeout=60)
    cache = Cache(RedisStore(client), [Namespace("api", ttl_s=60, lease_s=10)], prefix=run)

    def loader() -> dict[str, str]:
        client.incr(f"{run}:loads")
        time.sleep(LOAD_S)
        return {"from": "origin"}

    client.rpush(f"{run}:ready", 1)
    assert client.blpop([f"{run}:go"], timeout=30) is not None
    with ThreadPoolExecutor(threads) as pool:
        got = list(
            pool.map(lambda _: cache.get_or_set("hot", loader, namespace="api"), range(threads))
        )
    print(json.dumps({"values": got, "waits": cache.tiers.counts["api"].lease_waits}))


def watch(url: str, run: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=60)
    cache = Cache(RedisStore(client), [Namespace("api", ttl_s=3600)], prefix=run)
    assert cache.tiers.subscribed.wait(30)
    first = cache.get("k", namespace="api")  # from L2, kept in L1
    assert cache.get("k", namespace="api") == first
    assert cache.tiers.counts["api"].l1_hits == 1
    client.rpush(f"{run}:ready", 1)
    deadline = time.monotonic() + 60
    value = first
    while value == first and time.monotonic() < deadline:
        time.sleep(0.001)  # the application's next request; not a synchronisation
        value = cache.get("k", namespace="api")
    seen_at = time.time()
    print(
        json.dumps(
            {"value": value, "seen_at": seen_at, "l1_hits": cache.tiers.counts["api"].l1_hits}
        )
    )
    cache.close()


def refresh(url: str, run: str, threads: int) -> None:
    client = redis.Redis.from_url(url, socket_timeout=90)
    hot = Namespace("api", ttl_s=60, lease_s=30, refresh_ahead=0.5)
    cache = Cache(RedisStore(client), [hot], prefix=run)

    def loader() -> str:
        client.incr(f"{run}:reloads")
        # Held until every reader has been answered once: they must not wait for it.
        assert client.blpop([f"{run}:release"], timeout=60) is not None
        return "v1"

    def reader(_: int) -> list[str]:
        values = [cache.get_or_set("hot", loader, namespace="api")]
        client.rpush(f"{run}:first-read", 1)
        deadline = time.monotonic() + 60
        while values[-1] != "v1" and time.monotonic() < deadline:
            time.sleep(0.001)  # the application's next request; not a synchronisation
            values.append(cache.get_or_set("hot", loader, namespace="api"))
        return values

    assert cache.tiers.subscribed.wait(30)
    client.rpush(f"{run}:ready", 1)
    assert client.blpop([f"{run}:go"], timeout=60) is not None
    with ThreadPoolExecutor(threads) as pool:
        got = list(pool.map(reader, range(threads)))
    cache.close()
    print(json.dumps({"values": got, "refreshes": cache.refresher.refreshes}))


if __name__ == "__main__":
    if sys.argv[1] == "stampede":
        stampede(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "refresh":
        refresh(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        watch(sys.argv[2], sys.argv[3])
