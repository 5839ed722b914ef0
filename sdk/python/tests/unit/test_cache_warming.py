"""Warming against the in-memory L2: from a declared list, and from the most-read keys
that the previous run kept on close; read counts stay bounded; failures are counted."""

from __future__ import annotations

from opsmesh_client.cache import AsyncCache, Cache, Namespace
from opsmesh_client.cache.testing import AsyncMemoryStore, FakeClock, MemoryStore
from opsmesh_client.cache.warming import (
    TopKeys,
    awarm_from_last_run,
    warm,
    warm_from_last_run,
)

API = Namespace("api", ttl_s=60, warm_top_keys=2)


def make(clock: FakeClock, store: MemoryStore) -> Cache:
    return Cache(store, [API], clock=clock, sleep=clock.sleep)


def test_a_declared_list_is_loaded_and_a_failing_loader_does_not_stop_the_rest() -> None:
    clock = FakeClock()
    cache = make(clock, MemoryStore(clock))

    def broken() -> str:
        raise ConnectionError("origin down")

    try:
        result = warm(cache, {"a": lambda: 1, "b": broken, "c": lambda: 3}, namespace="api")
        assert (result.warmed, result.failed) == (2, 1)
        assert [cache.get(k, namespace="api") for k in "abc"] == [1, None, 3]
    finally:
        cache.close()


def test_the_next_run_warms_the_most_read_keys_of_the_last_one() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    first = make(clock, store)
    for key, reads in (("a", 5), ("b", 1), ("c", 3)):
        for _ in range(reads):
            first.get_or_set(key, lambda key=key: key.upper(), namespace="api")
    first.close()
    for key in "abc":  # the values are gone (Redis restarted, or they expired)
        store.delete(first.tiers.l2_key(API, key))
    second = make(clock, store)
    loaded: list[str] = []

    def loader(key: str) -> str:
        loaded.append(key)
        return key.upper()

    try:
        result = warm_from_last_run(second, "api", loader)
        assert loaded == ["a", "c"]  # the two most read, most read first
        assert result.warmed == 2
        assert second.get("c", namespace="api") == "C"
    finally:
        second.close()


def test_read_counts_are_bounded_and_keep_the_most_read() -> None:
    top = TopKeys()
    ns = Namespace("api", warm_top_keys=1)
    for _ in range(50):
        top.on_read(ns, "hot")
    for i in range(100):
        top.on_read(ns, f"cold{i}")
    assert top.top(ns) == [("hot", 50)]
    assert top.top(Namespace("other")) == []


async def test_the_async_cache_keeps_the_ranking_on_aclose_and_warms_from_it() -> None:
    clock = FakeClock()
    store = AsyncMemoryStore(clock)
    first = AsyncCache(store, [API], clock=clock, sleep=clock.async_sleep)
    await first.start()
    await first.set("k", 1, namespace="api")
    for _ in range(3):
        await first.get("k", namespace="api")
    await first.aclose()
    store.sync.delete(first.tiers.l2_key(API, "k"))
    second = AsyncCache(store, [API], clock=clock, sleep=clock.async_sleep)
    await second.start()

    async def loader(key: str) -> str:
        return f"loaded {key}"

    try:
        assert (await awarm_from_last_run(second, "api", loader)).warmed == 1
        assert await second.get("k", namespace="api") == "loaded k"
    finally:
        await second.aclose()
