"""The cache's figures as its client publishes them: lookups per tier, evictions, L1 size,
latency per tier and operation, the hit ratio over its window and its margin to the
namespace's target; nothing without a client, and nothing once the cache is closed.
Against the in-memory L2, a fake clock and the SDK's memory transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from opsmesh_client.cache import AsyncCache, Cache, CacheError, Namespace, Strategy
from opsmesh_client.cache.observed import (
    API_HIT_RATIO_TARGET,
    BEHIND_FALLBACKS,
    ENTRIES,
    EVICTIONS,
    HIT_RATIO,
    HIT_RATIO_MARGIN,
    L1_SAMPLE_EVERY,
    L3_BYPASSED,
    LATENCY,
    LEASE_WAITS,
    LOADS,
    LOOKUPS,
    REFRESHES,
    STALE_SERVED,
    RatioWindow,
)
from opsmesh_client.cache.query import QueryCache
from opsmesh_client.cache.testing import AsyncMemoryStore, FakeClock, MemoryStore
from opsmesh_client.client import Client
from opsmesh_client.settings import load
from opsmesh_client.testing import MemoryTransports
from opsmesh_client.wire import Kind

API = Namespace("api", ttl_s=10, stale_s=60, lease_s=5, hit_ratio_target=API_HIT_RATIO_TARGET)


def make_client(clock: FakeClock, made: MemoryTransports) -> Client:
    return Client(
        load({}, service="shop", kafka="unused:1", instance="web-1"),
        transport=made,
        clock=clock,
        start=False,
    )


def published(client: Client, made: MemoryTransports) -> list[dict[str, Any]]:
    """The metric samples of one collection (the flush collects, then sends)."""
    made.transport.records.clear()
    assert client.flush()
    return [r.body for r in made.transport.of(Kind.METRIC)]


def value(samples: list[dict[str, Any]], name: str, **labels: str) -> float:
    [found] = [s for s in samples if s["name"] == name and labels.items() <= s["labels"].items()]
    result: float = found["count"] if found["kind"] == "histogram" else found["value"]
    return result


def names(samples: list[dict[str, Any]]) -> set[str]:
    return {s["name"] for s in samples}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def made() -> MemoryTransports:
    return MemoryTransports()


def test_a_cache_without_a_client_records_nothing_and_keeps_its_store(clock: FakeClock) -> None:
    store = MemoryStore(clock)
    cache = Cache(store, [API], clock=clock, sleep=clock.sleep)
    cache.set("k", 1, namespace="api")
    assert cache.get("k", namespace="api") == 1
    assert cache.tiers.observer is None
    assert cache.store is store
    cache.close()


def test_lookups_per_tier_loads_and_evictions_are_published_as_cumulative_counters(
    clock: FakeClock, made: MemoryTransports
) -> None:
    client = make_client(clock, made)
    small = Namespace("small", max_entries=2)
    cache = Cache(MemoryStore(clock), [API, small], clock=clock, sleep=clock.sleep, client=client)
    cache.set("a", 1, namespace="api")
    assert cache.get("a", namespace="api") == 1  # L1
    cache.tiers.l1["api"].clear()
    assert cache.get("a", namespace="api") == 1  # L2
    assert cache.get("b", namespace="api") is None  # neither
    assert cache.get_or_set("c", lambda: 3, namespace="api") == 3  # neither: loaded
    for key in ("x", "y", "z"):
        cache.set(key, key, namespace="small")  # the third evicts "x" from L1

    samples = published(client, made)
    assert value(samples, LOOKUPS, namespace="api", tier="l1", result="hit") == 1
    assert value(samples, LOOKUPS, namespace="api", tier="l1", result="miss") == 3
    assert value(samples, LOOKUPS, namespace="api", tier="l2", result="hit") == 1
    assert value(samples, LOOKUPS, namespace="api", tier="l2", result="miss") == 2
    assert value(samples, LOADS, namespace="api", result="ok") == 1
    assert value(samples, LOADS, namespace="api", result="failed") == 0
    assert value(samples, STALE_SERVED, namespace="api") == 0
    assert value(samples, LEASE_WAITS, namespace="api") == 0
    assert value(samples, EVICTIONS, namespace="small", tier="l1") == 1
    assert value(samples, ENTRIES, namespace="small", tier="l1") == 2
    counter = next(s for s in samples if s["name"] == LOOKUPS)
    assert counter["kind"] == "counter"
    assert counter["labels"]["service"] == "shop"
    assert counter["labels"]["instance"] == "web-1"

    cache.get("a", namespace="api")  # one more L1 hit: the next sample is cumulative
    assert value(published(client, made), LOOKUPS, namespace="api", tier="l1", result="hit") == 2
    cache.close()
    client.close()


def test_latency_is_timed_per_tier_and_operation_and_l1_one_lookup_in_n(
    clock: FakeClock, made: MemoryTransports
) -> None:
    client = make_client(clock, made)
    cache = Cache(MemoryStore(clock), [API], clock=clock, sleep=clock.sleep, client=client)
    cache.set("hot", 1, namespace="api")
    for _ in range(2 * L1_SAMPLE_EVERY):
        cache.get("hot", namespace="api")
    cache.get_or_set("cold", lambda: 2, namespace="api")
    cache.delete("hot", namespace="api")

    samples = published(client, made)
    assert value(samples, LATENCY, namespace="api", tier="l1", operation="get") == 2
    assert value(samples, LATENCY, namespace="api", tier="origin", operation="load") == 1
    # set "hot", set "cold" after its load; get "cold" (a miss in L1); its lease; delete.
    assert value(samples, LATENCY, namespace="api", tier="l2", operation="set") == 2
    assert value(samples, LATENCY, namespace="api", tier="l2", operation="get") == 1
    assert value(samples, LATENCY, namespace="api", tier="l2", operation="acquire") == 1
    assert value(samples, LATENCY, namespace="api", tier="l2", operation="release") == 1
    assert value(samples, LATENCY, namespace="api", tier="l2", operation="delete") == 1
    histogram = next(s for s in samples if s["name"] == LATENCY)
    assert histogram["buckets"][0]["le"] == pytest.approx(1e-6)
    cache.close()
    client.close()


def test_a_failing_loader_is_timed_and_counted(clock: FakeClock, made: MemoryTransports) -> None:
    client = make_client(clock, made)
    cache = Cache(None, [API], clock=clock, sleep=clock.sleep, client=client)

    def boom() -> int:
        raise RuntimeError("origin down")

    with pytest.raises(RuntimeError):
        cache.get_or_set("k", boom, namespace="api")
    samples = published(client, made)
    assert value(samples, LOADS, namespace="api", result="failed") == 1
    assert value(samples, LATENCY, namespace="api", tier="origin", operation="load") == 1
    assert not [s for s in samples if s["labels"].get("tier") == "l2"]  # no L2 declared
    client.close()


def test_the_hit_ratio_and_its_margin_appear_once_the_window_holds_enough_lookups(
    clock: FakeClock, made: MemoryTransports
) -> None:
    client = make_client(clock, made)
    cache = Cache(None, [API, Namespace("untargeted")], clock=clock, client=client)
    cache.set("hot", 1, namespace="api")
    cache.set("hot", 1, namespace="untargeted")
    for _ in range(50):
        cache.get("hot", namespace="api")
    samples = published(client, made)
    assert HIT_RATIO not in names(samples)  # 50 lookups: fewer than MIN_LOOKUPS

    clock.advance(2)  # within the values' 10 s TTL
    for i in range(100):  # 50 hits, 50 misses: 100 of 150 since the cache began
        cache.get("hot" if i < 50 else f"cold-{i}", namespace="api")
        cache.get("hot", namespace="untargeted")
    samples = published(client, made)
    assert value(samples, HIT_RATIO, namespace="api") == pytest.approx(100 / 150)
    margin = value(samples, HIT_RATIO_MARGIN, namespace="api")
    assert margin == pytest.approx(100 / 150 - API_HIT_RATIO_TARGET)
    [labels] = [s["labels"] for s in samples if s["name"] == HIT_RATIO_MARGIN]
    assert labels == {"service": "shop", "instance": "web-1", "namespace": "api", "target": "0.8"}
    # No target declared: its ratio is published, no margin.
    assert value(samples, HIT_RATIO, namespace="untargeted") == 1.0
    assert not [
        s
        for s in samples
        if s["labels"].get("namespace") == "untargeted" and s["name"] == HIT_RATIO_MARGIN
    ]
    client.close()


def test_the_ratio_window_slides_and_keeps_its_baseline() -> None:
    window = RatioWindow(window_s=300, min_lookups=10)
    assert window.add(0, 0, 0) is None
    assert window.add(100, 5, 5) is None  # fewer than ten lookups so far
    assert window.add(200, 15, 20) == pytest.approx(0.75)
    # At 400 the baseline is the snapshot at 100 (the newest at or before 400 - 300).
    assert window.add(400, 15, 30) == pytest.approx(10 / 25)
    # A quiet window: no lookups since 400 within the last 300 s but the baseline's.
    assert window.add(800, 15, 30) is None
    assert window.add(900, 115, 130) == pytest.approx(1.0)


def test_a_closed_cache_stops_publishing(clock: FakeClock, made: MemoryTransports) -> None:
    client = make_client(clock, made)
    cache = Cache(MemoryStore(clock), [API], clock=clock, sleep=clock.sleep, client=client)
    cache.get("k", namespace="api")
    assert LOOKUPS in names(published(client, made))
    cache.close()
    assert cache.tiers.observer is None
    assert not names(published(client, made)) & {LOOKUPS, LATENCY}
    client.close()


def test_the_async_cache_publishes_the_same_figures(
    clock: FakeClock, made: MemoryTransports
) -> None:
    client = make_client(clock, made)

    async def use_open() -> list[dict[str, Any]]:
        cache = AsyncCache(AsyncMemoryStore(clock), [API], clock=clock, client=client)
        await cache.start()

        async def load() -> int:
            return 1

        await cache.get_or_set("k", load, namespace="api")
        await cache.get("k", namespace="api")
        samples = published(client, made)
        await cache.aclose()
        return samples

    samples = asyncio.run(use_open())
    assert value(samples, LOOKUPS, namespace="api", tier="l1", result="hit") == 1
    assert value(samples, LOOKUPS, namespace="api", tier="l2", result="miss") == 1
    assert value(samples, LATENCY, namespace="api", tier="l2", operation="set") == 1
    assert value(samples, LATENCY, namespace="api", tier="origin", operation="load") == 1
    client.close()


def test_the_strategies_counts_are_published_for_the_namespaces_that_use_them(
    clock: FakeClock, made: MemoryTransports
) -> None:
    client = make_client(clock, made)
    behind = Namespace(
        "behind", strategy=Strategy.WRITE_BEHIND, behind_max_pending=1, behind_batch=1
    )
    hot = Namespace("hot", ttl_s=10, refresh_ahead=0.2, lease_s=5)
    store = MemoryStore(clock)
    cache = Cache(
        store, [API, behind, hot, Namespace("query")], clock=clock, sleep=clock.sleep, client=client
    )
    other = Cache(store, [hot], clock=clock, sleep=clock.sleep)
    # No PostgreSQL listens on port 1: the query cache never listens, so it bypasses.
    l3 = QueryCache(cache, redis.Redis(port=1), "postgresql://127.0.0.1:1/none")
    try:
        cache.set("a", 1, namespace="behind")
        cache.set("b", 2, namespace="behind")  # the queue holds one: sent through
        for key in ("reloaded", "failed", "skipped"):
            cache.set(key, "v0", namespace="hot")
        clock.advance(9.0)
        cache.refresher.refresh(hot, "reloaded", lambda: "v1", None)
        cache.refresher.refresh(hot, "failed", _fail, None)
        other.refresher.refresh(hot, "skipped", lambda: "v1", None)  # the other instance
        cache.refresher.refresh(hot, "skipped", lambda: "v2", None)  # reloaded by it
        for _ in range(2):
            assert l3.get_or_run("SELECT 1 FROM t", None, lambda: [[1]]) == [[1]]

        samples = published(client, made)
        assert value(samples, BEHIND_FALLBACKS, namespace="behind") == 1
        assert value(samples, REFRESHES, namespace="hot", result="reloaded") == 1
        assert value(samples, REFRESHES, namespace="hot", result="failed") == 1
        assert value(samples, REFRESHES, namespace="hot", result="skipped") == 1
        assert value(samples, L3_BYPASSED, namespace="query") == 2
        assert (cache.write_behind and cache.write_behind.fallbacks, l3.bypassed) == (1, 2)
        # A namespace using none of them has none of their series.
        strategies = {BEHIND_FALLBACKS, REFRESHES, L3_BYPASSED}
        assert not any(
            s["labels"]["namespace"] == "api" for s in samples if s["name"] in strategies
        )
    finally:
        l3.close()
        other.close()
        cache.close()
        client.close()


def _fail() -> str:
    raise ConnectionError("origin down")


@pytest.mark.parametrize("target", [0.0, -0.1, 1.5])
def test_a_hit_ratio_target_outside_0_to_1_is_refused(target: float) -> None:
    with pytest.raises(CacheError, match="hit_ratio_target"):
        Namespace("x", hit_ratio_target=target)
