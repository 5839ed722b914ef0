"""The cache's policies against an in-memory L2 and a fake clock: which tier answers, LRU
bounds, expiry, one load per key (in-process and across "processes" sharing one L2),
stale values on loader failure, a Redis outage degrading to the loader."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from opsmesh_client.cache import AsyncCache, Cache, CacheError, Loaded, Namespace
from opsmesh_client.cache.entry import Entry
from opsmesh_client.cache.lru import Lru
from opsmesh_client.cache.testing import AsyncMemoryStore, FakeClock, MemoryListener, MemoryStore

API = Namespace("api", ttl_s=10, stale_s=60, lease_s=5)


def entry(size: int) -> Entry:
    return Entry("v", 0.0, 0.0, size)


def make(clock: FakeClock, store: MemoryStore | None = None, *ns: Namespace) -> Cache:
    return Cache(store, ns or (API,), clock=clock, sleep=clock.sleep)


def test_l1_evicts_the_least_recently_used_beyond_its_entry_bound() -> None:
    lru = Lru(max_entries=2, max_bytes=1000)
    lru.set("a", entry(1))
    lru.set("b", entry(1))
    assert lru.get("a") is not None  # "b" is now the least recently used
    lru.set("c", entry(1))
    assert lru.get("b") is None
    assert lru.get("a") is not None
    assert lru.get("c") is not None
    assert lru.evictions == 1


def test_l1_evicts_until_its_byte_bound_holds_and_refuses_a_value_larger_than_it() -> None:
    lru = Lru(max_entries=100, max_bytes=10)
    lru.set("a", entry(4))
    lru.set("b", entry(4))
    lru.set("c", entry(4))
    assert lru.get("a") is None
    assert lru.bytes == 8
    lru.set("b", entry(1))  # replacing counts the new size only
    assert lru.bytes == 5
    assert lru.set("huge", entry(11)) is False
    assert lru.get("huge") is None
    assert lru.bytes == 5


def test_a_value_is_served_from_l1_then_expires_with_its_ttl() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    cache = make(clock, store)
    cache.set("k", {"n": 1}, namespace="api")
    gets = store.gets
    assert cache.get("k", namespace="api") == {"n": 1}
    assert store.gets == gets  # answered by L1
    clock.advance(10)
    assert cache.get("k", "gone", namespace="api") == "gone"
    counts = cache.tiers.counts["api"]
    assert (counts.l1_hits, counts.misses) == (1, 1)


def test_a_loader_may_decide_the_ttl_of_what_it_loaded() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    cache = make(clock, store)
    other = make(clock, store)
    assert cache.get_or_set("k", lambda: Loaded("v", 2.0), namespace="api") == "v"
    assert other.get("k", namespace="api") == "v"  # the bare value, in L2 too
    clock.advance(2)
    assert cache.get("k", namespace="api") is None  # 2 s, not the namespace's 10

    async def load() -> Loaded:
        return Loaded("w", 3.0)

    async def use() -> list[str | None]:
        acache = AsyncCache(AsyncMemoryStore(clock), [API], clock=clock, invalidation=False)
        got = [await acache.get_or_set("k", load, namespace="api")]
        clock.advance(3)
        got.append(await acache.get("k", namespace="api"))
        await acache.aclose()
        return got

    assert asyncio.run(use()) == ["w", None]


def test_a_second_instance_reads_l2_then_keeps_the_value_in_its_own_l1() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    make(clock, store).set("k", [1, 2], namespace="api")
    other = make(clock, store)
    assert other.get("k", namespace="api") == [1, 2]
    assert other.get("k", namespace="api") == [1, 2]
    counts = other.tiers.counts["api"]
    assert (counts.l2_hits, counts.l1_hits) == (1, 1)


def test_delete_removes_the_key_from_both_tiers() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    cache = make(clock, store)
    cache.set("k", 1, namespace="api")
    cache.delete("k", namespace="api")
    assert cache.get("k", namespace="api") is None
    assert make(clock, store).get("k", namespace="api") is None


def test_a_namespace_without_l2_never_touches_the_store() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    local = Namespace("local", l2=False)
    cache = make(clock, store, local)
    assert cache.get_or_set("k", lambda: 3, namespace="local") == 3
    assert store.gets == 0
    assert make(clock, store, local).get("k", namespace="local") is None


def test_concurrent_callers_in_one_process_share_one_load() -> None:
    clock = FakeClock()
    cache = make(clock, MemoryStore(clock))
    release = threading.Event()
    loads = 0

    def loader() -> str:
        nonlocal loads
        loads += 1
        assert release.wait(10)
        return "v"

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(cache.get_or_set, "k", loader, namespace="api") for _ in range(8)]
        # Wait (with a bound) until the leader is loading, then let it finish.
        for _ in range(1000):
            if loads:
                break
            threading.Event().wait(0.01)
        release.set()
        assert [f.result(10) for f in futures] == ["v"] * 8
    assert loads == 1


def test_a_process_that_lost_the_lease_takes_the_holders_value_from_l2() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    holder = make(clock, store)
    waiter = make(clock, store)
    # The holder has taken the lease and is loading; it writes while the waiter polls.
    assert store.acquire(holder.tiers.lease_key(API, "k"), "holder", API.lease_s)

    def holder_finishes(seconds: float) -> None:
        clock.advance(seconds)
        holder.set("k", "from holder", namespace="api")

    waiter._sleep = holder_finishes
    loads: list[str] = []

    def own() -> str:
        loads.append("own")
        return "own"

    assert waiter.get_or_set("k", own, namespace="api") == "from holder"
    assert loads == []
    assert waiter.tiers.counts["api"].lease_waits == 1


def test_a_lease_that_ends_without_a_value_lets_the_waiter_load() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    assert store.acquire(make(clock, store).tiers.lease_key(API, "k"), "dead", API.lease_s)
    cache = make(clock, store)
    assert cache.get_or_set("k", lambda: "own", namespace="api") == "own"
    assert clock.now >= 1_760_000_000.0 + API.lease_s


def test_a_failing_loader_is_answered_with_the_stale_value_within_stale_s() -> None:
    clock = FakeClock()
    cache = make(clock, MemoryStore(clock))
    cache.set("k", "old", namespace="api")
    clock.advance(API.ttl_s + 1)

    def broken() -> str:
        raise ConnectionError("origin down")

    assert cache.get_or_set("k", broken, namespace="api") == "old"
    assert cache.tiers.counts["api"].stale_served == 1
    clock.advance(API.stale_s)
    with pytest.raises(ConnectionError):
        cache.get_or_set("k", broken, namespace="api")


def test_the_stale_value_may_come_from_l2_when_l1_has_none() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    make(clock, store).set("k", "old", namespace="api")
    clock.advance(API.ttl_s + 1)
    fresh_instance = make(clock, store)

    def broken() -> str:
        raise TimeoutError

    assert fresh_instance.get_or_set("k", broken, namespace="api") == "old"


def test_a_redis_outage_degrades_to_l1_and_the_loader() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    store.failing = True
    cache = make(clock, store)
    assert cache.get_or_set("k", lambda: 7, namespace="api") == 7
    assert cache.get("k", namespace="api") == 7
    assert store.errors > 0


def test_the_decorator_caches_by_arguments() -> None:
    clock = FakeClock()
    cache = make(clock, MemoryStore(clock))
    calls: list[int] = []

    @cache.cached(namespace="api")
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    assert [square(3), square(3), square(4)] == [9, 9, 16]
    assert calls == [3, 4]


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(CacheError, match="ttl_s"):
        Namespace("x", ttl_s=0)
    with pytest.raises(CacheError, match="does not match"):
        Namespace("a b")
    with pytest.raises(CacheError, match="neither tier"):
        Namespace("x", l1=False, l2=False)
    cache = make(FakeClock())
    with pytest.raises(CacheError, match="not declared"):
        cache.get("k", namespace="nope")
    with pytest.raises(CacheError, match="non-empty"):
        cache.set("", 1, namespace="api")


async def test_async_callers_share_one_load_and_the_decorator_awaits() -> None:
    clock = FakeClock()
    cache = AsyncCache(AsyncMemoryStore(clock), [API], clock=clock, sleep=clock.async_sleep)
    loads = 0
    gate = asyncio.Event()

    async def loader() -> str:
        nonlocal loads
        loads += 1
        await gate.wait()
        return "v"

    tasks = [asyncio.create_task(cache.get_or_set("k", loader, namespace="api")) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == ["v"] * 10
    assert loads == 1

    @cache.cached(namespace="api", key=lambda n: f"double:{n}")
    async def double(n: int) -> int:
        return n * 2

    assert await double(4) == 8
    assert await cache.get("double:4", namespace="api") == 8


async def test_async_stale_on_failure_and_loader_errors_reach_every_waiter() -> None:
    clock = FakeClock()
    cache = AsyncCache(AsyncMemoryStore(clock), [API], clock=clock, sleep=clock.async_sleep)

    async def broken() -> str:
        await asyncio.sleep(0)
        raise ConnectionError("down")

    results = await asyncio.gather(
        *(cache.get_or_set("k", broken, namespace="api") for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    await cache.set("k", "old", namespace="api")
    clock.advance(API.ttl_s)
    assert await cache.get_or_set("k", broken, namespace="api") == "old"


def test_a_write_in_one_instance_drops_the_key_from_the_others_l1() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    reader, writer = make(clock, store), make(clock, store)
    writer.set("k", "old", namespace="api")
    assert reader.get("k", namespace="api") == "old"  # now in reader's L1
    writer.set("k", "new", namespace="api")
    assert reader.get("k", namespace="api") == "new"
    writer.delete("k", namespace="api")
    assert reader.get("k", namespace="api") is None
    # An instance ignores its own messages: its L1 already holds what it wrote.
    assert writer.tiers.invalidations_received == 0
    assert reader.tiers.invalidations_received == 3


def test_while_unsubscribed_l1_is_bypassed_and_it_starts_empty_again() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    cache = make(clock, store)
    cache.set("k", 1, namespace="api")
    store.drop_subscriptions()
    gets = store.gets
    assert cache.get("k", namespace="api") == 1
    assert cache.get("k", namespace="api") == 1
    assert store.gets == gets + 2  # both answered by L2
    assert len(cache.tiers.l1["api"]) == 0
    listener = cache._listener
    assert isinstance(listener, MemoryListener)
    listener.resubscribe()
    cache.get("k", namespace="api")
    assert cache.get("k", namespace="api") == 1
    assert store.gets == gets + 3  # the second read came from L1


def test_a_message_that_is_not_an_invalidation_is_ignored() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    cache = make(clock, store)
    cache.set("k", 1, namespace="api")
    for noise in (b"hello", b"[1, 2]", b'["other", "unknown-ns", "k"]', b'["other", "api", 5]'):
        cache.tiers.on_invalidation(noise)
    assert len(cache.tiers.l1["api"]) == 1


async def test_the_async_cache_uses_l1_only_once_subscribed() -> None:
    clock = FakeClock()
    store = AsyncMemoryStore(clock)
    cache = AsyncCache(store, [API], clock=clock, sleep=clock.async_sleep)
    await cache.set("k", 1, namespace="api")
    assert len(cache.tiers.l1["api"]) == 0
    await cache.start()
    other = AsyncCache(store, [API], clock=clock, sleep=clock.async_sleep)
    await other.start()
    assert await cache.get("k", namespace="api") == 1
    await other.set("k", 2, namespace="api")
    assert await cache.get("k", namespace="api") == 2
    await cache.aclose()
    await other.aclose()
    assert store.sync.subscribers == []
