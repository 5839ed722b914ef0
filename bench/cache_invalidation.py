"""How long an overwritten value may still be served, measured on real Redis and PostgreSQL
(``bench.cache`` runs it; alone: ``uv run --frozen python -m bench.cache_invalidation``).

- L1: one process (this one) writes a key with ``Cache.set``; ``READERS`` other processes
  hold it in their L1 (TTL one hour, so only the invalidation can drop it). Each reader's
  L1 records the instant the invalidation deletes the key from it, the moment it stops
  serving the old value, then reads the new value back into L1 and acknowledges through
  Redis; the next write waits for every acknowledgement. The delay is from just before
  ``set`` is called (its L2 write and publish included) to that deletion, per reader, and
  per write the slowest reader's (when every instance has dropped it).
- L3: this process runs ``UPDATE`` on a table the query cache watches (autocommit); one
  other process with a ``QueryCache`` runs the cached query in a loop (a pause of
  ``POLL_S`` between queries, so its watcher thread gets the interpreter) and records when
  a query first returns the updated row, i.e. missed the cached result. The delay is from
  just before the ``UPDATE`` is sent (its execution and commit included) to that query's
  return: the ``NOTIFY`` reaching a watcher, its ``INCR``, the next query's look at the
  generations and its run.

Both clocks are ``time.time()`` on one machine, compared across processes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import redis

from opsmesh_client.cache import Cache, Namespace, RedisStore
from opsmesh_client.cache.lru import Lru
from opsmesh_client.cache.query import QueryCache, install_triggers
from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.infra.redis import RedisServer

READERS = 4
NS = Namespace("inv", ttl_s=3600)
QUERY_NS = Namespace("query", ttl_s=3600)
KEY = "k"
SQL = "SELECT v FROM inv_bench WHERE id = 1"
POLL_S = 0.0002
ACK_TIMEOUT_S = 30


class _TimedLru(Lru):
    """An L1 that notes when the benchmark's key is deleted from it (by an invalidation)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        super().__init__(max_entries, max_bytes)
        self.dropped_at = 0.0
        self.dropped = threading.Event()

    def delete(self, key: str) -> None:
        super().delete(key)
        if key == KEY:
            self.dropped_at = time.time()
            self.dropped.set()


def l1_reader(url: str, run: str, writes: int) -> None:
    client = redis.Redis.from_url(url)
    cache = Cache(RedisStore(client), [NS], prefix=run)
    lru = _TimedLru(NS.max_entries, NS.max_bytes)
    cache.tiers.l1[NS.name] = lru
    try:
        if not cache.tiers.subscribed.wait(ACK_TIMEOUT_S):
            raise RuntimeError("not subscribed to invalidations")
        if cache.get(KEY, namespace=NS.name) != -1:
            raise RuntimeError("the initial value is not in L2")
        client.rpush(f"{run}:ready", 1)
        for i in range(writes):
            if not lru.dropped.wait(ACK_TIMEOUT_S):
                raise RuntimeError(f"write {i} never invalidated this L1")
            lru.dropped.clear()
            if cache.get(KEY, namespace=NS.name) != i:  # the new value, back in L1
                raise RuntimeError(f"write {i}: L2 did not hold the written value")
            client.rpush(f"{run}:ack", json.dumps([i, lru.dropped_at]))
    finally:
        cache.close()


def l3_reader(url: str, dsn: str, run: str, writes: int) -> None:
    client = redis.Redis.from_url(url)
    cache = Cache(RedisStore(client), [QUERY_NS], prefix=run)
    l3 = QueryCache(cache, client, dsn)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            deadline = time.monotonic() + ACK_TIMEOUT_S
            while not l3.watcher.listening.is_set():
                if time.monotonic() > deadline:
                    raise RuntimeError("the query cache's watcher never listened")
                time.sleep(0.01)  # polling interval of a condition wait
            seen = l3.fetch_all(conn, SQL)[0][0]
            client.rpush(f"{run}:ready", 1)
            for _ in range(writes):
                deadline = time.monotonic() + ACK_TIMEOUT_S
                while (value := l3.fetch_all(conn, SQL)[0][0]) == seen:
                    if time.monotonic() > deadline:
                        raise RuntimeError("an UPDATE never reached the query cache")
                    time.sleep(POLL_S)  # the measured loop's own pause (see the docstring)
                client.rpush(f"{run}:ack", json.dumps([value, time.time()]))
                seen = value
    finally:
        l3.close()
        cache.close()


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cache_invalidation", *args], stdout=subprocess.PIPE, text=True
    )


def _acks(client: redis.Redis, key: str, count: int) -> list[float]:
    """The times ``count`` acknowledgements carry (``[what, time]``; ready ones: 0)."""
    times = []
    for _ in range(count):
        popped = client.blpop([key], timeout=ACK_TIMEOUT_S)
        if popped is None:
            raise RuntimeError(f"no acknowledgement on {key} within {ACK_TIMEOUT_S} s")
        ack = json.loads(popped[1])
        times.append(float(ack[1]) if isinstance(ack, list) else 0.0)
    return times


def _finish(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        try:
            worker.communicate(timeout=ACK_TIMEOUT_S)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        if worker.returncode != 0:
            raise RuntimeError(f"a reader failed ({worker.returncode})")


def measure_l1(url: str, run: str, writes: int) -> dict[str, list[float]]:
    """Per reader and per write (the slowest reader), seconds from ``set`` to deletion."""
    client = redis.Redis.from_url(url, socket_timeout=ACK_TIMEOUT_S + 5)
    writer = Cache(RedisStore(client), [NS], prefix=run)
    writer.set(KEY, -1, namespace=NS.name)
    readers = [_spawn("--l1-reader", url, run, str(writes)) for _ in range(READERS)]
    per_reader: list[float] = []
    per_write: list[float] = []
    try:
        _acks(client, f"{run}:ready", READERS)
        for i in range(writes):
            started = time.time()
            writer.set(KEY, i, namespace=NS.name)
            delays = [at - started for at in _acks(client, f"{run}:ack", READERS)]
            per_reader += delays
            per_write.append(max(delays))
        _finish(readers)
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
        writer.close()
    return {"per reader": per_reader, "every reader": per_write}


def measure_l3(url: str, dsn: str, run: str, writes: int) -> list[float]:
    """Seconds from sending an ``UPDATE`` to the other instance's first query that sees it."""
    client = redis.Redis.from_url(url, socket_timeout=ACK_TIMEOUT_S + 5)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS inv_bench (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO inv_bench VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET v = 0")
        install_triggers(conn, ["inv_bench"])
        reader = _spawn("--l3-reader", url, run, str(writes), "--dsn", dsn)
        delays = []
        try:
            _acks(client, f"{run}:ready", 1)
            for _ in range(writes):
                started = time.time()
                conn.execute("UPDATE inv_bench SET v = v + 1 WHERE id = 1")
                delays += [at - started for at in _acks(client, f"{run}:ack", 1)]
            _finish([reader])
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
    return delays


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1000}


def report(url: str, dsn: str, run: str, writes: int) -> None:
    print(f"\ninvalidation delivery ({writes} writes each; ms)")
    print(f"  {'':44}{'p50':>10}{'p99':>10}{'max':>10}")
    rows = {f"L1, {READERS} readers: {k}": v for k, v in measure_l1(url, run, writes).items()}
    rows["L3, UPDATE to the other instance's miss"] = measure_l3(url, dsn, f"{run}-l3", writes)
    for name, seconds in rows.items():
        s = summary(seconds)
        print(f"  {name:44}{s['p50_ms']:10.2f}{s['p99_ms']:10.2f}{s['max_ms']:10.2f}")


def with_postgres(url: str, run: str, writes: int) -> None:
    """``report`` against ``url``'s Redis and a PostgreSQL started for it."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-cache-inv-"))
    workdir.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    postgres = PostgresServer(workdir / "postgres")
    try:
        postgres.start()
        report(url, postgres.dsn, f"{run}-inv", writes)
    finally:
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(writes: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-cache-inv-redis-"))
    redis_server = RedisServer(workdir / "redis")
    try:
        with_postgres(redis_server.start(), f"b{int(time.time())}", writes)
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_invalidation")
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--l1-reader", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--l3-reader", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    parsed = parse(sys.argv[1:])
    if parsed.l1_reader:
        l1_reader(parsed.l1_reader[0], parsed.l1_reader[1], int(parsed.l1_reader[2]))
    elif parsed.l3_reader:
        l3_reader(parsed.l3_reader[0], parsed.dsn, parsed.l3_reader[1], int(parsed.l3_reader[2]))
    else:
        main(parsed.writes)
