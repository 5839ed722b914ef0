"""Adaptive TTL: per key, the TTL a write gets moves between ``adaptive_min_ttl_s`` and
``adaptive_max_ttl_s`` with how the key is used.

- Read often, rarely changed: each ``HOT_READS`` reads since the key's value last changed
  (doubling: 10, 20, 40, ...) double the namespace's ``ttl_s``, up to the maximum.
- Changes often: the TTL is at most half the key's usual time between changes (an
  exponentially weighted mean of the intervals), so a value is not kept fresh for longer
  than about half the time it usually stays the same, down to the minimum.

A write whose bytes equal the previous ones is not a change (a reload that found the same
value). The TTL is decided when a value is written (``set``, a load, a refresh): a key
that becomes hot gets its longer TTL at its next write. The statistics are this process's
own (not shared between instances) and bounded to ``MAX_KEYS`` keys per namespace, the
least recently used forgotten first. The core is pure: an injected clock, no I/O.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from opsmesh_client.cache.base import Clock
from opsmesh_client.cache.settings import Namespace

HOT_READS = 10
MAX_KEYS = 10_000
_WEIGHT = 0.5  # of the newest interval in the mean


@dataclass(slots=True)
class KeyStats:
    reads: int = 0  # since the value last changed
    digest: bytes = b""
    last_change: float | None = None
    change_interval: float | None = None


class AdaptiveTtl:
    """One namespace's statistics and the TTL they give."""

    def __init__(self, ns: Namespace, clock: Clock, max_keys: int = MAX_KEYS) -> None:
        if ns.adaptive_max_ttl_s is None:
            raise ValueError(f"namespace {ns.name!r} has no adaptive TTL")
        self.ns = ns
        self.max_ttl_s: float = ns.adaptive_max_ttl_s
        self._clock = clock
        self._max_keys = max_keys
        self._keys: OrderedDict[str, KeyStats] = OrderedDict()
        self._lock = threading.Lock()

    def _stats(self, key: str) -> KeyStats:
        stats = self._keys.get(key)
        if stats is None:
            stats = self._keys[key] = KeyStats()
            if len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        return stats

    def on_read(self, key: str) -> None:
        with self._lock:
            self._stats(key).reads += 1

    def on_write(self, key: str, payload: bytes) -> float:
        """Record the write; the TTL it gets."""
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        now = self._clock()
        with self._lock:
            stats = self._stats(key)
            if digest != stats.digest:
                if stats.digest and stats.last_change is not None:
                    interval = now - stats.last_change
                    stats.change_interval = (
                        interval
                        if stats.change_interval is None
                        else _WEIGHT * interval + (1 - _WEIGHT) * stats.change_interval
                    )
                    stats.reads = 0
                stats.digest = digest
                stats.last_change = now
            return self._ttl(stats)

    def ttl(self, key: str) -> float:
        with self._lock:
            stats = self._keys.get(key)
            return self._ttl(stats) if stats is not None else self.ns.ttl_s

    def _ttl(self, stats: KeyStats) -> float:
        ttl = self.ns.ttl_s
        if stats.reads >= HOT_READS:
            doublings = int(math.log2(stats.reads / HOT_READS)) + 1
            ttl = self.ns.ttl_s * 2.0 ** min(doublings, 64)
        if stats.change_interval is not None:
            ttl = min(ttl, stats.change_interval / 2)
        return max(self.ns.adaptive_min_ttl_s, min(ttl, self.max_ttl_s))

    def __len__(self) -> int:
        return len(self._keys)


class Adaptive:
    """The statistics of every adaptive namespace of one cache (made on first use)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.namespaces: dict[str, AdaptiveTtl] = {}
        self._lock = threading.Lock()

    def of(self, ns: Namespace) -> AdaptiveTtl:
        found = self.namespaces.get(ns.name)
        if found is None or found.ns is not ns:
            with self._lock:
                found = self.namespaces[ns.name] = AdaptiveTtl(ns, self._clock)
        return found

    def on_read(self, ns: Namespace, key: str) -> None:
        if ns.adaptive_max_ttl_s is not None:
            self.of(ns).on_read(key)

    def ttl_for_write(
        self, ns: Namespace, key: str, ttl_s: float | None, payload: bytes
    ) -> float | None:
        """The TTL a write without an explicit one gets (None: the namespace's)."""
        if ns.adaptive_max_ttl_s is None or ttl_s is not None:
            return ttl_s
        return self.of(ns).on_write(key, payload)
