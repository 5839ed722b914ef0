"""Adaptive TTL's pure core with a fake clock: a key read often and never changed gets a
longer TTL up to the maximum, a key that changes often a shorter one down to the minimum,
rewriting the same bytes is no change, and the statistics stay bounded; then the same
through the cache's writes and reads."""

from __future__ import annotations

import pytest

from opsmesh_client.cache import Cache, CacheError, Namespace
from opsmesh_client.cache.adaptive import HOT_READS, AdaptiveTtl
from opsmesh_client.cache.testing import FakeClock, MemoryStore

NS = Namespace("a", ttl_s=60, adaptive_min_ttl_s=1, adaptive_max_ttl_s=600)


def test_a_key_read_often_and_never_changed_gets_a_longer_ttl_up_to_the_maximum() -> None:
    clock = FakeClock()
    core = AdaptiveTtl(NS, clock)
    assert core.on_write("k", b"v") == 60
    ttls, done = [], 0
    for reads in (HOT_READS, 2 * HOT_READS, 4 * HOT_READS, 64 * HOT_READS):
        for _ in range(reads - done):
            core.on_read("k")
        done = reads
        ttls.append(core.on_write("k", b"v"))  # a reload that found the same value
    assert ttls == [120, 240, 480, 600]


def test_a_key_that_changes_often_gets_at_most_half_its_time_between_changes() -> None:
    clock = FakeClock()
    core = AdaptiveTtl(NS, clock)
    core.on_write("k", b"1")
    clock.advance(10)
    assert core.on_write("k", b"2") == 5
    clock.advance(2)
    assert core.on_write("k", b"3") == 3  # mean of 10 and 2 is 6: half is 3
    for i in range(20):
        clock.advance(0.5)
        ttl = core.on_write("k", str(i).encode())
    assert ttl == 1  # the minimum
    for _ in range(100 * HOT_READS):  # reads do not override how often it changes
        core.on_read("k")
    assert core.ttl("k") == 1


def test_a_change_resets_the_reads_that_lengthened_the_ttl() -> None:
    clock = FakeClock()
    core = AdaptiveTtl(NS, clock)
    core.on_write("k", b"1")
    for _ in range(HOT_READS):
        core.on_read("k")
    assert core.ttl("k") == 120
    clock.advance(3600)  # rarely: an hour later
    assert core.on_write("k", b"2") == 60  # reads start again; half an hour caps nothing


def test_statistics_are_kept_for_a_bounded_number_of_keys() -> None:
    core = AdaptiveTtl(NS, FakeClock(), max_keys=3)
    for key in "abcde":
        core.on_write(key, b"v")
    assert len(core) == 3
    assert core.ttl("a") == 60  # forgotten: the namespace's TTL


def test_adaptive_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(CacheError):
        Namespace("a", ttl_s=60, adaptive_min_ttl_s=90, adaptive_max_ttl_s=600)
    with pytest.raises(CacheError):
        Namespace("a", ttl_s=60, adaptive_max_ttl_s=30)


def test_the_cache_gives_a_hot_key_its_longer_ttl_at_its_next_write() -> None:
    clock = FakeClock()
    cache = Cache(MemoryStore(clock), [NS], clock=clock, sleep=clock.sleep)
    try:
        cache.set("k", {"v": 1}, namespace="a")
        for _ in range(HOT_READS):
            assert cache.get("k", namespace="a") == {"v": 1}
        assert cache.get_or_set("k", lambda: {"v": 1}, namespace="a") == {"v": 1}
        clock.advance(60)  # expired at the base TTL: the reload gets 2 x 60 (11 reads)
        assert cache.get_or_set("k", lambda: {"v": 1}, namespace="a") == {"v": 1}
        clock.advance(119)
        assert cache.get("k", namespace="a") == {"v": 1}
        cache.set("k", {"v": 2}, namespace="a", ttl_s=5)  # an explicit TTL wins
        clock.advance(5)
        assert cache.get("k", namespace="a") is None
    finally:
        cache.close()
