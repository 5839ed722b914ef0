"""The cache's figures in the mesh: lookups per tier, latency per tier and operation,
evictions, and each namespace's hit ratio against its target, published through an opsmesh
client's metrics. A cache made without a client has none of this (no cost, no import of
the client).

What recording costs on the request path: the lookup counts are the ``Counts`` the tiers
keep anyway (read only at collection); an L2 call and a loader call are timed into an
in-memory histogram (two clock reads and a bucket increment, against a Redis round trip);
an L1 lookup is timed once in ``L1_SAMPLE_EVERY`` (a sub-microsecond lookup timed every
time would cost as much again as the lookup). Every ``metrics_interval_s`` the client's
sending thread collects everything as samples (cumulative counters, as metrics-ingest's
rollups expect); nothing is sent per operation.

The hit ratio a namespace is alerted on is taken over the last ``ratio_window_s`` (a
5-minute window by default, read at each collection), and only once that window holds
``min_lookups`` lookups: a quiet namespace's few lookups say little, and a missing sample
is not a 0 % hit ratio. ``cache_hit_ratio_margin`` is that ratio minus the namespace's
declared ``hit_ratio_target``; the mesh's built-in CacheHitRatioBelowTarget rule alerts
while it stays below 0 (the names here are the mesh's catalogue's: a contract test there
keeps them in step).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsmesh_client.cache.settings import Namespace, Strategy
from opsmesh_client.metrics import Histogram, HistogramSeries
from opsmesh_client.wire import Record, metric_sample

if TYPE_CHECKING:
    from opsmesh_client.cache.base import Tiers
    from opsmesh_client.cache.invalidation import AsyncListener, Listener, OnMessage, OnState
    from opsmesh_client.cache.l2 import AsyncStore, SyncStore, Write
    from opsmesh_client.client import Client

LOOKUPS = "cache_lookups_total"  # counter: namespace, tier (l1|l2), result (hit|miss)
LOADS = "cache_loads_total"  # counter: namespace, result (ok|failed)
STALE_SERVED = "cache_stale_served_total"  # counter: namespace
LEASE_WAITS = "cache_lease_waits_total"  # counter: namespace
EVICTIONS = "cache_evictions_total"  # counter: namespace, tier (l1)
ENTRIES = "cache_entries"  # gauge: namespace, tier (l1)
BYTES = "cache_bytes"  # gauge: namespace, tier (l1)
LATENCY = "cache_operation_duration_seconds"  # histogram: namespace, tier, operation
HIT_RATIO = "cache_hit_ratio"  # gauge: namespace (over the ratio window)
HIT_RATIO_MARGIN = "cache_hit_ratio_margin"  # gauge: namespace, target
# The strategies' own, for the namespaces that use them.
BEHIND_FALLBACKS = "cache_write_behind_fallbacks_total"  # counter: namespace
REFRESHES = "cache_refresh_ahead_total"  # counter: namespace, result (reloaded|skipped|failed)
L3_BYPASSED = "cache_l3_bypassed_total"  # counter: namespace
METRIC_NAMES = (
    LOOKUPS,
    LOADS,
    STALE_SERVED,
    LEASE_WAITS,
    EVICTIONS,
    ENTRIES,
    BYTES,
    LATENCY,
    HIT_RATIO,
    HIT_RATIO_MARGIN,
    BEHIND_FALLBACKS,
    REFRESHES,
    L3_BYPASSED,
)

# The tiers and operations ``LATENCY`` is labelled with.
L1, L2, ORIGIN = "l1", "l2", "origin"
GET, SET, DELETE, ACQUIRE, RELEASE, LOAD = "get", "set", "delete", "acquire", "release", "load"

# The seed's targets: a static-asset namespace should answer 95 % of lookups from cache,
# an API namespace 80 % (declare them as ``Namespace(..., hit_ratio_target=...)``).
STATIC_HIT_RATIO_TARGET = 0.95
API_HIT_RATIO_TARGET = 0.80

L1_SAMPLE_EVERY = 16
RATIO_WINDOW_S = 300.0
MIN_LOOKUPS = 100
# From 1 µs (an L1 lookup) to 10 s (a slow loader).
LATENCY_BUCKETS = (
    *(1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4),
    *(1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    hits: int
    lookups: int


class RatioWindow:
    """One namespace's hits and lookups at each collection, kept for ``window_s``: the
    ratio is the increase of hits over the increase of lookups across the window."""

    def __init__(self, window_s: float, min_lookups: int) -> None:
        self.window_s = window_s
        self.min_lookups = min_lookups
        # The cache began with no lookups: until the window is older than the cache, the
        # ratio is over every lookup so far.
        self._snapshots: deque[Snapshot] = deque([Snapshot(float("-inf"), 0, 0)])

    def add(self, at: float, hits: int, lookups: int) -> float | None:
        """Record the cumulative counts at ``at``; the window's ratio, or None when it
        holds fewer than ``min_lookups`` lookups."""
        self._snapshots.append(Snapshot(at, hits, lookups))
        # Keep the newest snapshot at or before the window's start: it is the baseline.
        while len(self._snapshots) > 1 and self._snapshots[1].at <= at - self.window_s:
            self._snapshots.popleft()
        base = self._snapshots[0]
        lookups_in = lookups - base.lookups
        if lookups_in < self.min_lookups or lookups_in <= 0:
            return None
        return (hits - base.hits) / lookups_in


class CacheMetrics:
    """The observer a cache calls (``Tiers.observer``) and the collector its client reads."""

    def __init__(
        self,
        tiers: Tiers,
        *,
        service: str,
        instance: str,
        l2: bool = True,
        ratio_window_s: float = RATIO_WINDOW_S,
        min_lookups: int = MIN_LOOKUPS,
        l1_sample_every: int = L1_SAMPLE_EVERY,
    ) -> None:
        if ratio_window_s <= 0 or min_lookups < 1 or l1_sample_every < 1:
            raise ValueError("ratio_window_s > 0, min_lookups >= 1 and l1_sample_every >= 1")
        self._tiers = tiers
        self._l2 = l2  # False: the cache has no store, whatever its namespaces say
        self._constant = {"service": service, "instance": instance}
        self._ratio_window_s = ratio_window_s
        self._min_lookups = min_lookups
        self.l1_sample_every = l1_sample_every
        self._latency = Histogram(LATENCY, ["namespace", "tier", "operation"], LATENCY_BUCKETS)
        self._series: dict[tuple[str, str, str], HistogramSeries] = {}
        self._windows: dict[str, RatioWindow] = {}
        self._lock = threading.Lock()

    # -- called by the cache on its request path ----------------------------------------

    def observe(self, namespace: str, tier: str, operation: str, seconds: float) -> None:
        key = (namespace, tier, operation)
        series = self._series.get(key)
        if series is None:
            series = self._series.setdefault(
                key, self._latency.labels(namespace=namespace, tier=tier, operation=operation)
            )
        series.observe(max(0.0, seconds))

    # -- called by the client's sending thread -----------------------------------------

    def collect(self, at: float) -> Iterable[Record]:
        records = self._latency.collect(at, self._constant)
        for name, ns in list(self._tiers.namespaces.items()):
            records.extend(
                self._namespace(at, name, ns.l1, ns.l2 and self._l2, ns.hit_ratio_target)
            )
            records.extend(self._strategies(at, ns))
        return records

    def _strategies(self, at: float, ns: Namespace) -> list[Record]:
        """Series only for the strategies a namespace uses (no zeros for the others)."""
        counts = self._tiers.counts[ns.name]
        labels = {**self._constant, "namespace": ns.name}
        out = []
        if ns.strategy is Strategy.WRITE_BEHIND:
            out.append(
                metric_sample(BEHIND_FALLBACKS, "counter", counts.behind_fallbacks, labels, at)
            )
        if ns.refresh_ahead:
            for result, value in (
                ("reloaded", counts.refreshes),
                ("skipped", counts.refresh_skips),
                ("failed", counts.refresh_failures),
            ):
                out.append(
                    metric_sample(REFRESHES, "counter", value, {**labels, "result": result}, at)
                )
        if ns.name in self._tiers.l3_namespaces:
            out.append(metric_sample(L3_BYPASSED, "counter", counts.l3_bypassed, labels, at))
        return out

    def _namespace(
        self, at: float, name: str, l1: bool, l2: bool, target: float | None
    ) -> list[Record]:
        counts = self._tiers.counts[name]
        lru = self._tiers.l1[name]
        hits = counts.l1_hits + counts.l2_hits
        lookups = hits + counts.misses

        def sample(metric: str, kind: str, value: float, **labels: str) -> Record:
            return metric_sample(
                metric, kind, value, {**self._constant, "namespace": name, **labels}, at
            )

        out = []
        if l1:
            out += [
                sample(LOOKUPS, "counter", counts.l1_hits, tier=L1, result="hit"),
                sample(LOOKUPS, "counter", lookups - counts.l1_hits, tier=L1, result="miss"),
                sample(EVICTIONS, "counter", lru.evictions, tier=L1),
                sample(ENTRIES, "gauge", len(lru), tier=L1),
                sample(BYTES, "gauge", lru.bytes, tier=L1),
            ]
        if l2:
            out += [
                sample(LOOKUPS, "counter", counts.l2_hits, tier=L2, result="hit"),
                sample(LOOKUPS, "counter", counts.misses, tier=L2, result="miss"),
            ]
        out += [
            sample(LOADS, "counter", counts.loads - counts.load_failures, result="ok"),
            sample(LOADS, "counter", counts.load_failures, result="failed"),
            sample(STALE_SERVED, "counter", counts.stale_served),
            sample(LEASE_WAITS, "counter", counts.lease_waits),
        ]
        with self._lock:
            window = self._windows.get(name)
            if window is None:
                window = self._windows[name] = RatioWindow(self._ratio_window_s, self._min_lookups)
            ratio = window.add(at, hits, lookups)
        if ratio is not None:
            out.append(sample(HIT_RATIO, "gauge", ratio))
            if target is not None:
                out.append(
                    sample(HIT_RATIO_MARGIN, "gauge", ratio - target, target=format_target(target))
                )
        return out


def format_target(target: float) -> str:
    """The target as its label carries it: ``0.95``, ``0.8`` (a rule template reads it)."""
    return f"{target:g}"


def attach(
    tiers: Tiers,
    client: Client,
    *,
    l2: bool = True,
    ratio_window_s: float = RATIO_WINDOW_S,
    min_lookups: int = MIN_LOOKUPS,
    l1_sample_every: int = L1_SAMPLE_EVERY,
) -> CacheMetrics:
    """Make the tiers report to ``client``: its collector publishes them every interval."""
    observer = CacheMetrics(
        tiers,
        service=client.settings.service,
        instance=client.settings.instance,
        l2=l2,
        ratio_window_s=ratio_window_s,
        min_lookups=min_lookups,
        l1_sample_every=l1_sample_every,
    )
    tiers.observer = observer
    client.metrics.add_collector(observer.collect)
    return observer


def detach(tiers: Tiers, client: Client | None) -> None:
    """Stop publishing (the cache is closed); the last counts were sent at the last
    collection."""
    observer = tiers.observer
    tiers.observer = None
    if observer is not None and client is not None:
        client.metrics.remove_collector(observer.collect)


def _namespace_of(tiers: Tiers, key: str) -> str:
    """The namespace in an L2 value or lease key (``<prefix>:v:<ns>:<key>``,
    ``<prefix>:lease:<ns>:<key>``; a namespace's name holds no ':')."""
    return key[len(tiers.prefix) + 1 :].split(":", 2)[1]


class _Timed:
    """What every wrapped store shares: where a call's time goes."""

    def __init__(self, tiers: Tiers) -> None:
        self._tiers = tiers

    def _done(self, key: str, operation: str, started: float) -> None:
        observer = self._tiers.observer
        if observer is not None:
            observer.observe(
                _namespace_of(self._tiers, key), L2, operation, time.perf_counter() - started
            )


class TimedStore(_Timed):
    """A ``SyncStore`` whose namespaced calls are timed (the L2 latency)."""

    def __init__(self, store: SyncStore, tiers: Tiers) -> None:
        super().__init__(tiers)
        self.inner = store

    @property
    def errors(self) -> int:
        return self.inner.errors

    def publish(self, channel: str, message: str) -> None:
        self.inner.publish(channel, message)

    def listen(self, channel: str, on_message: OnMessage, on_state: OnState) -> Listener:
        return self.inner.listen(channel, on_message, on_state)

    def get(self, key: str) -> bytes | None:
        started = time.perf_counter()
        try:
            return self.inner.get(key)
        finally:
            self._done(key, GET, started)

    def set(self, key: str, data: bytes, ttl_s: float) -> None:
        started = time.perf_counter()
        try:
            self.inner.set(key, data, ttl_s)
        finally:
            self._done(key, SET, started)

    def delete(self, key: str) -> None:
        started = time.perf_counter()
        try:
            self.inner.delete(key)
        finally:
            self._done(key, DELETE, started)

    def acquire(self, key: str, token: str, ttl_s: float) -> bool | None:
        started = time.perf_counter()
        try:
            return self.inner.acquire(key, token, ttl_s)
        finally:
            self._done(key, ACQUIRE, started)

    def release(self, key: str, token: str) -> None:
        started = time.perf_counter()
        try:
            self.inner.release(key, token)
        finally:
            self._done(key, RELEASE, started)

    # Write-behind's batches and warming's ranking carry many keys or none: passed through
    # untimed (a batch is not one key's latency).
    def write_batch(self, sets: Sequence[Write], channel: str, messages: Sequence[str]) -> bool:
        return self.inner.write_batch(sets, channel, messages)

    def save_ranking(self, key: str, scores: Sequence[tuple[str, int]], ttl_s: float) -> bool:
        return self.inner.save_ranking(key, scores, ttl_s)

    def ranking(self, key: str, n: int) -> list[str]:
        return self.inner.ranking(key, n)


class AsyncTimedStore(_Timed):
    """An ``AsyncStore`` whose namespaced calls are timed (the L2 latency)."""

    def __init__(self, store: AsyncStore, tiers: Tiers) -> None:
        super().__init__(tiers)
        self.inner = store

    @property
    def errors(self) -> int:
        return self.inner.errors

    async def publish(self, channel: str, message: str) -> None:
        await self.inner.publish(channel, message)

    async def listen(self, channel: str, on_message: OnMessage, on_state: OnState) -> AsyncListener:
        return await self.inner.listen(channel, on_message, on_state)

    async def get(self, key: str) -> bytes | None:
        started = time.perf_counter()
        try:
            return await self.inner.get(key)
        finally:
            self._done(key, GET, started)

    async def set(self, key: str, data: bytes, ttl_s: float) -> None:
        started = time.perf_counter()
        try:
            await self.inner.set(key, data, ttl_s)
        finally:
            self._done(key, SET, started)

    async def delete(self, key: str) -> None:
        started = time.perf_counter()
        try:
            await self.inner.delete(key)
        finally:
            self._done(key, DELETE, started)

    async def acquire(self, key: str, token: str, ttl_s: float) -> bool | None:
        started = time.perf_counter()
        try:
            return await self.inner.acquire(key, token, ttl_s)
        finally:
            self._done(key, ACQUIRE, started)

    async def release(self, key: str, token: str) -> None:
        started = time.perf_counter()
        try:
            await self.inner.release(key, token)
        finally:
            self._done(key, RELEASE, started)

    # As TimedStore's: passed through untimed.
    async def write_batch(
        self, sets: Sequence[Write], channel: str, messages: Sequence[str]
    ) -> bool:
        return await self.inner.write_batch(sets, channel, messages)

    async def save_ranking(self, key: str, scores: Sequence[tuple[str, int]], ttl_s: float) -> bool:
        return await self.inner.save_ranking(key, scores, ttl_s)

    async def ranking(self, key: str, n: int) -> list[str]:
        return await self.inner.ranking(key, n)
