"""Write-behind against the in-memory L2 and a fake clock: writes are acknowledged once
queued, read back from the queue, sent by size, by interval and on close, kept while
Redis refuses them, replaced in place, and written through when the queue is full."""

from __future__ import annotations

import pytest

from opsmesh_client.cache import AsyncCache, Cache, Namespace
from opsmesh_client.cache.entry import Entry
from opsmesh_client.cache.settings import CacheError, Strategy
from opsmesh_client.cache.testing import AsyncMemoryStore, FakeClock, MemoryStore
from opsmesh_client.cache.write_behind import PendingWrites
from opsmesh_dev.infra.process import wait_until

BEHIND = Namespace(
    "w", ttl_s=60, strategy=Strategy.WRITE_BEHIND, behind_batch=100, behind_interval_s=1.0
)


def make(clock: FakeClock, store: MemoryStore, ns: Namespace = BEHIND) -> Cache:
    return Cache(store, [ns], clock=clock, sleep=clock.sleep)


def test_a_write_is_read_back_at_once_and_reaches_l2_when_the_interval_passes() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    writer, reader = make(clock, store), make(clock, store)
    try:
        writer.set("k", {"n": 1}, namespace="w")
        writer.tiers.l1["w"].clear()  # the queue answers even without L1
        assert writer.get("k", namespace="w") == {"n": 1}
        assert reader.get("k", namespace="w") is None  # not in L2 yet
        assert writer.write_behind is not None
        assert writer.write_behind.flush_due() == 0  # neither full nor due
        clock.advance(1.0)
        # Sent by this call or, just before it, by the sender's thread (which reads the
        # same clock); either way it is in L2 when the call returns (one send lock).
        writer.write_behind.flush_due()
        assert reader.get("k", namespace="w") == {"n": 1}
        assert store.batches >= 1
        assert len(writer.write_behind) == 0
    finally:
        writer.close()
        reader.close()


def test_a_full_batch_is_due_without_waiting_for_the_interval() -> None:
    core = PendingWrites(Namespace("w", behind_batch=3, behind_max_pending=10), FakeClock())
    for key in ("a", "b"):
        assert core.offer(key, f"l2:{key}", b"x", Entry(1, 9e12, 9e12, 1))
    assert not core.due(FakeClock().now)
    core.offer("c", "l2:c", b"x", Entry(1, 9e12, 9e12, 1))
    assert core.due(FakeClock().now)
    assert [w.key for w in core.take()] == ["a", "b", "c"]


def test_rewrites_of_a_pending_key_take_one_slot_and_the_newest_value_is_sent() -> None:
    clock = FakeClock()
    core = PendingWrites(Namespace("w", behind_batch=2, behind_max_pending=2), clock)
    assert core.offer("a", "l2:a", b"1", Entry(1, 9e12, 9e12, 1))
    batch = core.take()  # on the wire...
    assert core.offer("a", "l2:a", b"2", Entry(2, 9e12, 9e12, 1))  # ...when it is rewritten
    assert core.offer("b", "l2:b", b"1", Entry(1, 9e12, 9e12, 1))
    assert not core.offer("c", "l2:c", b"1", Entry(1, 9e12, 9e12, 1))  # full
    assert core.offer("a", "l2:a", b"3", Entry(3, 9e12, 9e12, 1))  # in place, still fits
    core.mark_sent(batch)
    pending_a = core.pending("a")
    assert pending_a is not None
    assert pending_a.value == 3  # the sent batch did not take the newer write away
    assert (len(core), core.fallbacks) == (2, 1)


def test_a_full_queue_writes_through_and_close_sends_what_redis_refused_before() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    small = Namespace(
        "w", ttl_s=60, strategy=Strategy.WRITE_BEHIND, behind_batch=2, behind_max_pending=2
    )
    writer, reader = make(clock, store, small), make(clock, store, small)
    try:
        store.failing = True  # Redis refuses the batches: "a" and "b" stay queued
        writer.set("a", 1, namespace="w")
        writer.set("b", 2, namespace="w")
        assert writer.write_behind is not None
        queue = writer.write_behind.queues["w"]
        # The full queue woke the sender, whose batch was refused; it backs off by the
        # fake clock, which stands still: it will not send again by itself.
        wait_until(lambda: queue.failures > 0, timeout_s=10, what="the refused batch")
        store.failing = False
        writer.set("c", 3, namespace="w")  # the queue is full: sent before set returns
        assert reader.get("c", namespace="w") == 3
        assert writer.write_behind.fallbacks == 1
        writer.close()
        assert [reader.get(k, namespace="w") for k in "abc"] == [1, 2, 3]
    finally:
        writer.close()
        reader.close()


def test_a_refused_batch_is_kept_and_sent_again_after_the_backoff() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    writer, reader = make(clock, store), make(clock, store)
    assert writer.write_behind is not None
    try:
        writer.set("k", "v", namespace="w")
        store.failing = True
        clock.advance(1.0)
        assert writer.write_behind.flush_due() == 0  # refused (here or on the thread)
        store.failing = False
        assert writer.write_behind.flush_due() == 0  # backing off
        assert reader.get("k", namespace="w") is None
        clock.advance(0.1)
        writer.write_behind.flush_due()  # (or the thread, as above)
        assert reader.get("k", namespace="w") == "v"
    finally:
        writer.close()
        reader.close()


def test_a_delete_takes_the_pending_write_out_of_the_queue() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    writer, reader = make(clock, store), make(clock, store)
    try:
        writer.set("k", "v", namespace="w")
        writer.delete("k", namespace="w")
        writer.close()
        assert writer.get("k", namespace="w") is None
        assert reader.get("k", namespace="w") is None
    finally:
        reader.close()


def test_a_loaded_value_is_written_through_for_the_processes_waiting_on_the_lease() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    writer, reader = make(clock, store), make(clock, store)
    try:
        assert writer.get_or_set("k", lambda: "origin", namespace="w") == "origin"
        assert reader.get("k", namespace="w") == "origin"
    finally:
        writer.close()
        reader.close()


def test_the_other_instances_l1_drops_the_old_value_when_the_batch_lands() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    writer, reader = make(clock, store), make(clock, store)
    try:
        writer.set("k", "old", namespace="w")
        writer.close()
        assert reader.get("k", namespace="w") == "old"  # now in the reader's L1
        writer = make(clock, store)
        writer.set("k", "new", namespace="w")
        assert reader.get("k", namespace="w") == "old"  # not sent yet
        writer.close()
        assert reader.get("k", namespace="w") == "new"
    finally:
        writer.close()
        reader.close()


async def test_the_async_cache_queues_and_sends_on_aclose() -> None:
    clock = FakeClock()
    store = AsyncMemoryStore(clock)
    cache = AsyncCache(store, [BEHIND], clock=clock, sleep=clock.async_sleep)
    await cache.start()
    reader = make(clock, store.sync)
    try:
        for i in range(5):
            await cache.set(f"k{i}", i, namespace="w")
        assert await cache.get("k4", namespace="w") == 4
        assert reader.get("k4", namespace="w") is None
        await cache.aclose()
        assert [reader.get(f"k{i}", namespace="w") for i in range(5)] == list(range(5))
    finally:
        await cache.aclose()
        reader.close()


def test_write_behind_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(CacheError):
        Namespace("w", strategy=Strategy.WRITE_BEHIND, l2=False)
    with pytest.raises(CacheError):
        Namespace("w", behind_batch=20, behind_max_pending=10)
