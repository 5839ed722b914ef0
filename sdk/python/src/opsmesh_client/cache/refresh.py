"""Refresh-ahead: a key that ``get_or_set`` finds fresh but within the last
``refresh_ahead`` fraction of its TTL is reloaded in the background, and the caller gets
the current value at once.

Once across all instances: the reload takes the key's Redis lease (the one ``get_or_set``
loads under), and, holding it, looks in L2 first; a value there that is no longer in its
refresh window means another instance has just reloaded it, and nothing is loaded. An
instance that finds the lease taken leaves the key alone for ``lease_s`` (the holder's
value reaches its L1 through the invalidation the write publishes, and if the holder dies
the lease ends). Without Redis (no store, or Redis down) each process reloads on its own.

A failing reload leaves the current value in place (it is still fresh); the failure is
counted and logged, and the next read in the window tries again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opsmesh_client.cache.base import Tiers, unwrap
from opsmesh_client.cache.entry import Entry
from opsmesh_client.cache.l2 import AsyncStore, SyncStore
from opsmesh_client.cache.settings import Namespace

log = logging.getLogger("opsmesh_client.cache")

_WORKERS = 4
_MAX_QUIET_KEYS = 10_000


def in_window(ns: Namespace, entry: Entry, ttl_s: float | None, now: float) -> bool:
    """Fresh, and within the last ``refresh_ahead`` of the TTL the caller asks for."""
    if ns.refresh_ahead <= 0 or not entry.fresh(now):
        return False
    ttl = ttl_s if ttl_s is not None else ns.ttl_s
    return entry.fresh_until - now <= ns.refresh_ahead * ttl


class _Gate:
    """Which keys this process is reloading, and which it leaves alone for a while."""

    def __init__(self, tiers: Tiers) -> None:
        self.tiers = tiers
        self._lock = threading.Lock()
        self._running: set[tuple[str, str]] = set()
        self._quiet: dict[tuple[str, str], float] = {}

    # This process's counts over every namespace (per namespace: ``tiers.counts``).
    @property
    def refreshes(self) -> int:
        return sum(c.refreshes for c in list(self.tiers.counts.values()))

    @property
    def skipped(self) -> int:
        return sum(c.refresh_skips for c in list(self.tiers.counts.values()))

    @property
    def failures(self) -> int:
        return sum(c.refresh_failures for c in list(self.tiers.counts.values()))

    def enter(self, ns: Namespace, key: str, entry: Entry, ttl_s: float | None) -> bool:
        now = self.tiers.clock()
        if not in_window(ns, entry, ttl_s, now):
            return False
        flight = (ns.name, key)
        with self._lock:
            if flight in self._running or self._quiet.get(flight, 0.0) > now:
                return False
            self._quiet.pop(flight, None)
            self._running.add(flight)
            return True

    def leave(self, ns: Namespace, key: str, lease_lost: bool) -> None:
        flight = (ns.name, key)
        with self._lock:
            self._running.discard(flight)
            if lease_lost:
                if len(self._quiet) >= _MAX_QUIET_KEYS:
                    self._quiet.clear()
                self._quiet[flight] = self.tiers.clock() + ns.lease_s

    def reloaded_elsewhere(
        self, ns: Namespace, key: str, found: Entry | None, ttl_s: float | None
    ) -> bool:
        """Holding the lease: is L2's value already past its window (another instance
        reloaded it)? Then it is kept in L1 and nothing is loaded."""
        now = self.tiers.clock()
        if found is None or not found.fresh(now) or in_window(ns, found, ttl_s, now):
            return False
        self.tiers.counts[ns.name].refresh_skips += 1
        self.tiers.keep_l1(ns, key, found)
        return True


# Writes a reloaded value through to L1 and L2 (the cache's own write).
Write = Callable[[Namespace, str, Any, float | None], None]
AsyncWrite = Callable[[Namespace, str, Any, float | None], Awaitable[None]]


class Refresher(_Gate):
    """Reloads on a small thread pool (``Cache``)."""

    def __init__(self, tiers: Tiers, store: SyncStore | None, write: Write) -> None:
        super().__init__(tiers)
        self._store = store
        self._write = write
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closed = False

    def maybe(
        self, ns: Namespace, key: str, entry: Entry, loader: Callable[[], Any], ttl_s: float | None
    ) -> None:
        if self._closed or not self.enter(ns, key, entry, ttl_s):
            return
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_WORKERS, "opsmesh-cache-refresh")
            self._pool.submit(self.refresh, ns, key, loader, ttl_s)

    def refresh(
        self, ns: Namespace, key: str, loader: Callable[[], Any], ttl_s: float | None
    ) -> None:
        store = self._store if ns.l2 else None
        token = self.tiers.new_token()
        lease = self.tiers.lease_key(ns, key)
        held = store.acquire(lease, token, ns.lease_s) if store is not None else None
        if held is False:
            self.tiers.counts[ns.name].refresh_skips += 1
            self.leave(ns, key, lease_lost=True)
            return
        try:
            if store is not None:
                found = self.tiers.from_l2(store.get(self.tiers.l2_key(ns, key)))
                if self.reloaded_elsewhere(ns, key, found, ttl_s):
                    return
            self.tiers.counts[ns.name].loads += 1  # an origin load like any other
            try:
                value, ttl = unwrap(loader(), ttl_s)
            except Exception as exc:
                self.tiers.counts[ns.name].refresh_failures += 1
                log.warning("cache refresh-ahead of a key failed: %s", type(exc).__name__)
                return
            self._write(ns, key, value, ttl)
            self.tiers.counts[ns.name].refreshes += 1
        finally:
            if held and store is not None:
                store.release(lease, token)
            self.leave(ns, key, lease_lost=False)

    def close(self) -> None:
        self._closed = True
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


class AsyncRefresher(_Gate):
    """Reloads on asyncio tasks (``AsyncCache``)."""

    def __init__(self, tiers: Tiers, store: AsyncStore | None, write: AsyncWrite) -> None:
        super().__init__(tiers)
        self._store = store
        self._write = write
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def maybe(
        self,
        ns: Namespace,
        key: str,
        entry: Entry,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
    ) -> None:
        if self._closed or not self.enter(ns, key, entry, ttl_s):
            return
        task = asyncio.get_running_loop().create_task(
            self.refresh(ns, key, loader, ttl_s), name="opsmesh-cache-refresh"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refresh(
        self, ns: Namespace, key: str, loader: Callable[[], Awaitable[Any]], ttl_s: float | None
    ) -> None:
        store = self._store if ns.l2 else None
        token = self.tiers.new_token()
        lease = self.tiers.lease_key(ns, key)
        held = await store.acquire(lease, token, ns.lease_s) if store is not None else None
        if held is False:
            self.tiers.counts[ns.name].refresh_skips += 1
            self.leave(ns, key, lease_lost=True)
            return
        try:
            if store is not None:
                found = self.tiers.from_l2(await store.get(self.tiers.l2_key(ns, key)))
                if self.reloaded_elsewhere(ns, key, found, ttl_s):
                    return
            self.tiers.counts[ns.name].loads += 1
            try:
                value, ttl = unwrap(await loader(), ttl_s)
            except Exception as exc:
                self.tiers.counts[ns.name].refresh_failures += 1
                log.warning("cache refresh-ahead of a key failed: %s", type(exc).__name__)
                return
            await self._write(ns, key, value, ttl)
            self.tiers.counts[ns.name].refreshes += 1
        finally:
            if held and store is not None:
                await store.release(lease, token)
            self.leave(ns, key, lease_lost=False)

    async def aclose(self) -> None:
        """Wait for the reloads under way (their values are written before close returns)."""
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
