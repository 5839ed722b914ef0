"""What the sync and async caches share: namespaces, their L1s, keys, entries, counts.

The policy (which tier answers, when a value is fresh, when a stale one may be served) is
here and in ``Entry``; the two front ends only differ in how they wait.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsmesh_client.cache.entry import Codec, CorruptEntry, Entry, JsonCodec, decode, encode
from opsmesh_client.cache.lru import Lru
from opsmesh_client.cache.settings import CacheError, Namespace, check_key

if TYPE_CHECKING:
    from opsmesh_client.cache.observed import CacheMetrics

Clock = Callable[[], float]
MISSING: Any = object()
# How often a process that lost the lease looks in L2 for the value the holder loads.
LEASE_POLL_S = 0.01


@dataclass(slots=True)
class Counts:
    """Per namespace, since the cache was made (monotonic, as counters are sent)."""

    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    loads: int = 0
    load_failures: int = 0
    stale_served: int = 0
    lease_waits: int = 0
    # The strategies' own (published as metrics like the others: cache.observed).
    behind_fallbacks: int = 0  # write-behind writes sent through: the queue was full
    refreshes: int = 0  # refresh-ahead reloads this process did
    refresh_skips: int = 0  # left to another instance (it held the lease or had reloaded)
    refresh_failures: int = 0  # reloads whose loader failed (the current value stays)
    l3_bypassed: int = 0  # L3 queries run uncached: the instance could not listen


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a loader may return instead of a bare value when it decides the value's TTL
    only once it has loaded it (an HTTP response's ``max-age``): ``ttl_s`` replaces the
    call's. The cache stores and returns ``value``."""

    value: Any
    ttl_s: float


def unwrap(value: Any, ttl_s: float | None) -> tuple[Any, float | None]:
    if isinstance(value, Loaded):
        return value.value, value.ttl_s
    return value, ttl_s


class Tiers:
    def __init__(
        self,
        namespaces: Iterable[Namespace] = (),
        *,
        prefix: str = "opsmesh-cache",
        codec: Codec | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.prefix = prefix
        self.codec: Codec = codec or JsonCodec()
        self.clock = clock
        self.namespaces: dict[str, Namespace] = {}
        self.l1: dict[str, Lru] = {}
        self.counts: dict[str, Counts] = {}
        self.l3_namespaces: set[str] = set()  # the namespaces query caches use (metrics)
        self.instance = uuid.uuid4().hex
        # False while another instance's invalidation could be missed (not subscribed):
        # L1 is then neither read nor filled.
        self.l1_trusted = True
        self.subscribed = threading.Event()
        self.invalidations_received = 0
        # Set when the cache publishes to an opsmesh client (cache.observed); None: no cost.
        self.observer: CacheMetrics | None = None
        self._l1_ticks = itertools.count(1)
        self.declare(Namespace())
        for namespace in namespaces:
            self.declare(namespace)

    def declare(self, namespace: Namespace) -> Namespace:
        self.namespaces[namespace.name] = namespace
        self.l1[namespace.name] = Lru(namespace.max_entries, namespace.max_bytes)
        self.counts.setdefault(namespace.name, Counts())
        return namespace

    def namespace(self, name: str) -> Namespace:
        try:
            return self.namespaces[name]
        except KeyError:
            raise CacheError(f"namespace {name!r} is not declared") from None

    def resolve(self, name: str, key: str) -> Namespace:
        check_key(key)
        return self.namespace(name)

    def l2_key(self, ns: Namespace, key: str) -> str:
        return f"{self.prefix}:v:{ns.name}:{key}"

    def lease_key(self, ns: Namespace, key: str) -> str:
        return f"{self.prefix}:lease:{ns.name}:{key}"

    def new_token(self) -> str:
        return f"{self.instance}:{uuid.uuid4().hex}"

    def make(self, ns: Namespace, value: Any, ttl_s: float | None) -> tuple[Entry, bytes]:
        """The entry for L1 and its bytes for L2 (encoded once, also to measure its size)."""
        payload = self.codec.dumps(value)
        now = self.clock()
        fresh_until = now + (ttl_s if ttl_s is not None else ns.ttl_s)
        stale_until = fresh_until + ns.stale_s
        entry = Entry(value, fresh_until, stale_until, len(payload))
        return entry, encode(payload, fresh_until, stale_until)

    def l2_ttl(self, entry: Entry) -> float:
        return max(entry.stale_until - self.clock(), 0.001)

    def from_l2(self, data: bytes | None) -> Entry | None:
        if data is None:
            return None
        try:
            return decode(data, self.codec)
        except CorruptEntry:
            return None

    @property
    def channel(self) -> str:
        return f"{self.prefix}:invalidate"

    def invalidation(self, ns: Namespace, key: str | None) -> str:
        """The message telling the other instances to drop ``key`` (None: the namespace)."""
        return json.dumps([self.instance, ns.name, key])

    def on_invalidation(self, data: bytes) -> None:
        try:
            instance, name, key = json.loads(data)
        except (ValueError, TypeError):
            return  # not ours: another writer on the channel
        if instance == self.instance or not isinstance(name, str):
            return
        lru = self.l1.get(name)
        if lru is None:
            return
        self.invalidations_received += 1
        if key is None:
            lru.clear()
        elif isinstance(key, str):
            lru.delete(key)

    def on_subscription(self, subscribed: bool) -> None:
        """Whatever was published while unsubscribed is unknown: L1 starts empty."""
        self.l1_trusted = False
        for lru in self.l1.values():
            lru.clear()
        self.l1_trusted = subscribed
        if subscribed:
            self.subscribed.set()
        else:
            self.subscribed.clear()

    def l1_fresh(self, ns: Namespace, key: str) -> tuple[Entry | None, Entry | None]:
        """(fresh entry, or else an entry still usable stale) from L1."""
        if not (ns.l1 and self.l1_trusted):
            return None, None
        observer = self.observer
        # One lookup in l1_sample_every is timed (a C-level counter: the check is what
        # every other lookup pays).
        if observer is not None and next(self._l1_ticks) % observer.l1_sample_every == 0:
            started = time.perf_counter()
            entry = self.l1[ns.name].get(key)
            observer.observe(ns.name, "l1", "get", time.perf_counter() - started)
        else:
            entry = self.l1[ns.name].get(key)
        if entry is None:
            return None, None
        now = self.clock()
        if entry.fresh(now):
            self.counts[ns.name].l1_hits += 1
            return entry, None
        if entry.usable_stale(now):
            return None, entry
        self.l1[ns.name].delete(key)
        return None, None

    def accept_l2(self, ns: Namespace, key: str, entry: Entry | None) -> tuple[bool, Entry | None]:
        """(fresh?, entry) for what L2 gave; a fresh one is copied into L1."""
        if entry is None:
            return False, None
        now = self.clock()
        if entry.fresh(now):
            self.counts[ns.name].l2_hits += 1
            self.keep_l1(ns, key, entry)
            return True, entry
        return False, entry if entry.usable_stale(now) else None

    def keep_l1(self, ns: Namespace, key: str, entry: Entry) -> None:
        if ns.l1 and self.l1_trusted:
            self.l1[ns.name].set(key, entry)

    def stale_fallback(self, ns: Namespace, stale: Entry | None, exc: BaseException) -> Any:
        """The loader failed: a stale value if one is still usable, else the loader's error."""
        self.counts[ns.name].load_failures += 1
        if stale is not None and stale.usable_stale(self.clock()):
            self.counts[ns.name].stale_served += 1
            return stale.value
        raise exc

    def loaded(self, ns: Namespace, started: float) -> None:
        """A loader call that began at ``started`` (``time.perf_counter``) is over."""
        if self.observer is not None:
            self.observer.observe(ns.name, "origin", "load", time.perf_counter() - started)

    def evictions(self, name: str) -> int:
        return self.l1[name].evictions


def newer(a: Entry | None, b: Entry | None) -> Entry | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.fresh_until >= b.fresh_until else b
