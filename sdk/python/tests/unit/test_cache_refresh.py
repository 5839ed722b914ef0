"""Refresh-ahead against the in-memory L2 and a fake clock: which reads fall in the
window, the caller gets the current value while the reload runs, one instance reloads
(the lease, and the look in L2 under it), and a failed reload keeps the value."""

from __future__ import annotations

import pytest

from opsmesh_client.cache import AsyncCache, Cache, CacheError, Namespace
from opsmesh_client.cache.entry import Entry
from opsmesh_client.cache.refresh import in_window
from opsmesh_client.cache.testing import AsyncMemoryStore, FakeClock, MemoryStore

HOT = Namespace("hot", ttl_s=10, refresh_ahead=0.2, lease_s=5)


def make(clock: FakeClock, store: MemoryStore) -> Cache:
    return Cache(store, [HOT], clock=clock, sleep=clock.sleep)


class Origin:
    def __init__(self, value: str = "v1") -> None:
        self.value = value
        self.calls = 0
        self.fail = False

    def __call__(self) -> str:
        self.calls += 1
        if self.fail:
            raise ConnectionError("origin down")
        return self.value


def test_the_window_is_the_last_fraction_of_the_callers_ttl() -> None:
    now = 1000.0
    assert not in_window(HOT, Entry("v", now + 2.5, now + 9, 1), None, now)
    assert in_window(HOT, Entry("v", now + 2.0, now + 9, 1), None, now)
    assert not in_window(HOT, Entry("v", now, now + 9, 1), None, now)  # expired: a miss
    assert in_window(HOT, Entry("v", now + 5, now + 9, 1), 30.0, now)  # 5 <= 0.2 x 30
    assert not in_window(Namespace("off"), Entry("v", now + 1, now + 9, 1), None, now)
    with pytest.raises(CacheError):
        Namespace("x", refresh_ahead=1.0)


def test_a_read_in_the_window_gets_the_current_value_and_the_key_is_reloaded() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    cache = make(clock, store)
    origin = Origin()
    try:
        cache.set("k", "v0", namespace="hot")
        clock.advance(7.0)  # 3 s left of 10: not yet in the window
        assert cache.get_or_set("k", origin, namespace="hot") == "v0"
        clock.advance(1.5)  # 1.5 s left: in the last 20 %
        assert cache.get_or_set("k", origin, namespace="hot") == "v0"
        cache.refresher.close()  # waits for the reload under way
        assert origin.calls == 1
        assert cache.refresher.refreshes == 1
        assert cache.tiers.counts["hot"].loads == 1  # counted as an origin load
        clock.advance(5.0)  # past the old value's expiry: the reloaded one answers
        assert cache.get("k", namespace="hot") == "v1"
        assert store.get(cache.tiers.lease_key(HOT, "k")) is None  # lease released
    finally:
        cache.close()


def test_an_instance_that_finds_the_lease_taken_leaves_the_key_alone() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    cache = make(clock, store)
    origin = Origin()
    try:
        cache.set("k", "v0", namespace="hot")
        clock.advance(9.0)
        assert store.acquire(cache.tiers.lease_key(HOT, "k"), "another-instance", 5)
        for _ in range(3):
            assert cache.get_or_set("k", origin, namespace="hot") == "v0"
        cache.refresher.close()
        assert origin.calls == 0
        assert cache.refresher.skipped == 1  # then quiet for lease_s: one lease attempt
    finally:
        cache.close()


def test_under_the_lease_a_value_another_instance_reloaded_is_not_loaded_again() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    one, two = make(clock, store), make(clock, store)
    origin = Origin()
    try:
        one.set("k", "v0", namespace="hot")
        clock.advance(9.0)
        one.refresher.refresh(HOT, "k", origin, None)
        assert origin.calls == 1
        # Instance two decided to reload from its own (older) view, after one finished.
        two.refresher.refresh(HOT, "k", origin, None)
        assert origin.calls == 1
        assert two.refresher.skipped == 1
        assert two.get("k", namespace="hot") == "v1"
    finally:
        one.close()
        two.close()


def test_a_failed_reload_keeps_the_current_value() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    cache = make(clock, store)
    origin = Origin()
    origin.fail = True
    try:
        cache.set("k", "v0", namespace="hot")
        clock.advance(9.0)
        cache.refresher.refresh(HOT, "k", origin, None)
        assert cache.refresher.failures == 1
        assert cache.get("k", namespace="hot") == "v0"
    finally:
        cache.close()


async def test_the_async_cache_reloads_in_a_task_and_aclose_waits_for_it() -> None:
    clock = FakeClock()
    store = AsyncMemoryStore(clock)
    cache = AsyncCache(store, [HOT], clock=clock, sleep=clock.async_sleep)
    await cache.start()
    calls: list[int] = []

    async def origin() -> str:
        calls.append(1)
        return "v1"

    try:
        await cache.set("k", "v0", namespace="hot")
        clock.advance(9.0)
        assert await cache.get_or_set("k", origin, namespace="hot") == "v0"
        assert await cache.get_or_set("k", origin, namespace="hot") == "v0"
    finally:
        await cache.aclose()
    assert calls == [1]
    assert await cache.get("k", namespace="hot") == "v1"
