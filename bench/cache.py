"""The SDK's multi-tier cache (``opsmesh_client.cache``) beside cashews and aiocache, doing
the same work in one run against one real Redis that the benchmark starts itself.

- Tiers, one process, one coroutine awaiting each call in turn: the latency (p50, p99) and
  throughput of an L1 hit, an L2 hit (a value another instance wrote, not yet in this
  one's L1) and a miss (no tier has the key). cashews runs its L1+L2 backend (``redis://``
  with ``client_side=True``: an in-memory layer over Redis, invalidated through Redis
  client tracking); aiocache has no two-tier cache, so its ``SimpleMemoryCache`` is put in
  front of its ``RedisCache`` here, as an application would compose them. The SDK's cache
  is run twice: alone, and given an opsmesh client (its metrics recorded as in
  production, sent to an in-memory transport) to show what observation costs.
- Zipf: four processes, each with ``CONCURRENCY`` coroutines, start at the same instant
  on an empty cache and call get-or-load on keys drawn from a Zipf distribution (s = 1.1
  over ``KEYS`` keys); the origin takes ``ORIGIN_S`` per load. The hot keys are requested
  by many coroutines in every process at once: a cold-start stampede. Values live
  ``ZIPF_TTL_S`` (``--zipf-ttl``; the default outlives the run, so every load beyond one
  per distinct key drawn is a stampede the protection let through; a shorter TTL adds
  expiry stampedes, and then the loads also depend on how long each library's run took).
  Stampede protection is each library's own: the SDK's single flight plus Redis lease;
  cashews' ``protected=True`` (in-process) with ``lock=True`` (a Redis lock); aiocache's
  ``RedLock`` around the Redis lookup (its ``cached_stampede`` pattern). Origin loads are
  counted across the four processes. ``--refresh-ahead`` runs the SDK's side with
  refresh-ahead where the SDK has it (``zipf_namespace``; it only acts on values that
  expire within the run, so give it a short ``--zipf-ttl``); without it, stampede
  protection only.

- Invalidation delivery (``bench.cache_invalidation``, the SDK only): how long after a
  write every other instance's L1 stops serving the old value, and after an ``UPDATE``
  the other instance's L3 query misses; needs PostgreSQL, which it starts.

    uv run --frozen python -m bench.cache [--refresh-ahead] [--ops N] [--zipf-ops N]
        [--invalidation-writes N]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import cache_invalidation
from bench.cache_contenders import CONTENDERS, Contender, open_contender, zipf_namespace
from opsmesh_dev.infra.redis import RedisServer

PROCESSES = 4
CONCURRENCY = 16
KEYS = 1000
ZIPF_S = 1.1
TTL_S = 3600.0  # the tiers' values
ZIPF_TTL_S = 60.0
ORIGIN_S = 0.005
START_DELAY_S = 3.0  # the workers connect, then all start at once


def value_for(key: str) -> dict[str, Any]:
    """A small API response (~100 bytes of JSON)."""
    return {"id": key, "name": f"item {key}", "price": 12.5, "tags": ["a", "b", "c"]}


# -- statistics -----------------------------------------------------------------------


def quantile(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000.0  # µs


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> dict[str, float]:
    """Each call awaited in turn and timed alone; throughput over the whole loop."""
    latencies = []
    started = time.perf_counter()
    for call in calls:
        t0 = time.perf_counter_ns()
        await call()
        latencies.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_us": quantile(latencies, 0.5),
        "p99_us": quantile(latencies, 0.99),
        "ops_s": len(calls) / elapsed,
    }


# -- tiers ------------------------------------------------------------------------------


async def tiers(name: str, url: str, ops: int, run: str) -> dict[str, dict[str, float]]:
    reader = await open_contender(name, url, f"{run}-{name}", TTL_S)
    writer = await open_contender(name, url, f"{run}-{name}", TTL_S)
    try:
        hot = "hot"
        await reader.set(hot, value_for(hot))
        assert await reader.get(hot) == value_for(hot)
        l1 = await timed([lambda: reader.get(hot)] * (4 * ops))

        keys = [f"l2-{i}" for i in range(ops)]
        for key in keys:
            await writer.set(key, value_for(key))
        l2 = await timed([_getter(reader, key, expect=True) for key in keys])

        absent = [f"absent-{i}" for i in range(ops)]
        miss = await timed([_getter(reader, key, expect=False) for key in absent])
        return {"L1 hit": l1, "L2 hit": l2, "miss": miss}
    finally:
        await reader.close()
        await writer.close()


def _getter(contender: Contender, key: str, *, expect: bool) -> Callable[[], Awaitable[None]]:
    async def get() -> None:
        found = await contender.get(key)
        if (found is not None) != expect:
            raise AssertionError(f"{contender.name}: {key} {'missing' if expect else 'found'}")

    return get


# -- zipf across processes --------------------------------------------------------------


def zipf_keys(count: int, seed: int) -> list[str]:
    weights = list(itertools.accumulate(1.0 / (k**ZIPF_S) for k in range(1, KEYS + 1)))
    draw = random.Random(seed)
    return [f"z{bisect.bisect(weights, draw.random() * weights[-1])}" for _ in range(count)]


async def zipf_worker(args: argparse.Namespace) -> None:
    contender = await open_contender(
        args.worker, args.url, args.run, args.zipf_ttl, refresh_ahead=args.refresh_ahead
    )
    loads = 0

    async def origin(key: str) -> dict[str, Any]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(ORIGIN_S)
        return value_for(key)

    keys = zipf_keys(args.zipf_ops, args.seed)
    latencies: list[int] = []

    async def run(share: list[str]) -> None:
        for key in share:
            t0 = time.perf_counter_ns()
            got = await contender.get_or_load(key, origin)
            latencies.append(time.perf_counter_ns() - t0)
            if got != value_for(key):
                raise AssertionError(f"{contender.name}: wrong value for {key}")

    await asyncio.sleep(max(0.0, args.start_at - time.time()))
    started = time.perf_counter()
    await asyncio.gather(*(run(keys[i::CONCURRENCY]) for i in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    await contender.close()
    print(json.dumps({"loads": loads, "ops": len(keys), "elapsed": elapsed, "ns": latencies}))


def zipf(name: str, url: str, run: str, args: argparse.Namespace) -> dict[str, float]:
    start_at = time.time() + START_DELAY_S
    command = [sys.executable, "-m", "bench.cache", "--worker", name, "--url", url]
    command += ["--run", f"{run}-zipf-{name}", "--zipf-ops", str(args.zipf_ops)]
    command += ["--zipf-ttl", str(args.zipf_ttl), "--start-at", str(start_at)]
    if args.refresh_ahead:
        command.append("--refresh-ahead")
    workers = [
        subprocess.Popen([*command, "--seed", str(seed)], stdout=subprocess.PIPE, text=True)
        for seed in range(PROCESSES)
    ]
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=600)
        if worker.returncode != 0:
            raise RuntimeError(f"{name} zipf worker failed ({worker.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    latencies = sorted(ns for r in results for ns in r["ns"])
    return {
        "ops_s": sum(r["ops"] for r in results) / max(r["elapsed"] for r in results),
        "p50_us": quantile(latencies, 0.5),
        "p99_us": quantile(latencies, 0.99),
        "loads": float(sum(r["loads"] for r in results)),
    }


# -- the run ----------------------------------------------------------------------------


def _table(title: str, rows: dict[str, dict[str, float]], columns: list[str]) -> None:
    print(f"\n{title}")
    print(f"  {'':26}" + "".join(f"{c:>12}" for c in columns))
    for name, figures in rows.items():
        print(f"  {name:26}" + "".join(f"{figures[c]:12,.1f}" for c in columns))


def _ratios(rows: dict[str, dict[str, float]], ours: str, column: str, better: str) -> None:
    for name, figures in rows.items():
        if name != ours and figures[column]:
            print(
                f"  {column}: {name} / {ours} = {figures[column] / rows[ours][column]:.2f}"
                f" ({better} is better)"
            )


def main(args: argparse.Namespace) -> None:
    zipf_namespace(args.zipf_ttl, refresh_ahead=args.refresh_ahead)  # refuses before the run
    workdir = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    redis_server = RedisServer(workdir / "redis")
    run = f"b{int(time.time())}"
    try:
        url = redis_server.start()
        print(
            f"Redis {url}; tiers: {args.ops} ops per tier (L1: {4 * args.ops});"
            f" zipf: {PROCESSES} processes x {CONCURRENCY} coroutines x {args.zipf_ops} ops,"
            f" {KEYS} keys s={ZIPF_S}, TTL {args.zipf_ttl} s, origin {ORIGIN_S * 1000:.0f} ms;"
            f" SDK refresh-ahead: {'on' if args.refresh_ahead else 'off'}"
        )
        by_tier: dict[str, dict[str, dict[str, float]]] = {}
        for name in CONTENDERS:
            for tier, figures in asyncio.run(tiers(name, url, args.ops, run)).items():
                by_tier.setdefault(tier, {})[name] = figures
        for tier, rows in by_tier.items():
            _table(f"{tier} (µs, ops/s; one coroutine)", rows, ["p50_us", "p99_us", "ops_s"])
            _ratios(rows, "opsmesh", "p50_us", "lower")
        stampede = {
            name: zipf(name, url, run, args) for name in CONTENDERS if name != "opsmesh+metrics"
        }
        drawn = {key for seed in range(PROCESSES) for key in zipf_keys(args.zipf_ops, seed)}
        _table("zipf get-or-load, 4 processes", stampede, ["p50_us", "p99_us", "ops_s", "loads"])
        print(f"  distinct keys drawn (the fewest loads possible without expiry): {len(drawn)}")
        _ratios(stampede, "opsmesh", "loads", "lower")
        _ratios(stampede, "opsmesh", "ops_s", "higher")
        if args.invalidation_writes:
            cache_invalidation.with_postgres(url, run, args.invalidation_writes)
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cache")
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--zipf-ops", type=int, default=3000, help="per process")
    parser.add_argument("--zipf-ttl", type=float, default=ZIPF_TTL_S)
    parser.add_argument("--refresh-ahead", action="store_true")
    parser.add_argument(
        "--invalidation-writes", type=int, default=300, help="0: no invalidation measurement"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    parsed = parse(sys.argv[1:])
    if parsed.worker:
        asyncio.run(zipf_worker(parsed))
    else:
        main(parsed)
