"""One application process of the multi-process cache tests (run as a script).

python cache_worker.py stampede REDIS_URL RUN THREADS
    waits for the go signal (BLPOP), then THREADS threads call get_or_set on one key
    whose loader counts its calls in Redis and takes a while; prints the values got.
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


if __name__ == "__main__":
    stampede(sys.argv[2], sys.argv[3], int(sys.argv[4]))
