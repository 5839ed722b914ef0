"""The cache for threads (WSGI, Django, scripts): L1 in-process, L2 shared.

``get_or_set`` loads a missing key once per process (single flight: concurrent callers
wait for the first) and once across processes (the first takes a Redis lease; the others
poll L2 for its value until the lease ends, then load themselves). When the loader fails,
a stale value (within ``stale_s`` after expiry) is served instead of the error.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opsmesh_client.cache.adaptive import Adaptive
from opsmesh_client.cache.base import LEASE_POLL_S, Clock, Tiers, newer, unwrap
from opsmesh_client.cache.entry import Codec, Entry
from opsmesh_client.cache.invalidation import Listener
from opsmesh_client.cache.l2 import SyncStore
from opsmesh_client.cache.observed import TimedStore, attach, detach
from opsmesh_client.cache.refresh import Refresher
from opsmesh_client.cache.settings import Namespace, Strategy
from opsmesh_client.cache.warming import TopKeys, save_top_keys
from opsmesh_client.cache.write_behind import WriteBehind

if TYPE_CHECKING:
    from opsmesh_client.client import Client

P = ParamSpec("P")
R = TypeVar("R")


class Cache:
    def __init__(
        self,
        store: SyncStore | None = None,
        namespaces: Iterable[Namespace] = (),
        *,
        prefix: str = "opsmesh-cache",
        codec: Codec | None = None,
        clock: Clock = time.time,
        invalidation: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        client: Client | None = None,
    ) -> None:
        self.tiers = Tiers(namespaces, prefix=prefix, codec=codec, clock=clock)
        self.adaptive = Adaptive(clock)
        self.top_keys = TopKeys()
        # With an opsmesh client the cache's figures are published (cache.observed).
        self._client = client
        if client is not None:
            attach(self.tiers, client, l2=store is not None)
            store = TimedStore(store, self.tiers) if store is not None else None
        self.store = store
        self._sleep = sleep
        # With a store, another instance's writes reach this L1 over pub/sub; until the
        # subscription is made (``start`` for the async cache) L1 is bypassed.
        self._invalidation = store is not None and invalidation
        if self._invalidation:
            self.tiers.l1_trusted = False
        self._listener: Listener | None = None
        self._flights: dict[tuple[str, str], Future[Any]] = {}
        self._flights_lock = threading.Lock()
        self.write_behind = (
            WriteBehind(self.tiers, store, self._invalidation, sleep) if store is not None else None
        )
        self.refresher = Refresher(
            self.tiers, store, lambda ns, key, value, ttl: self._set(ns, key, value, ttl, True)
        )

        if self._invalidation and store is not None:
            self._listener = store.listen(
                self.tiers.channel, self.tiers.on_invalidation, self.tiers.on_subscription
            )

    def close(self) -> None:
        """Wait for refreshes under way, send the writes still queued (write-behind), keep
        the most-read keys for warming, stop listening for invalidations (the store's
        connections are the caller's)."""
        self.refresher.close()
        if self.write_behind is not None:
            self.write_behind.close()
        if self.store is not None:
            save_top_keys(self.tiers, self.store, self.top_keys)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.tiers.l1_trusted = not self._invalidation
        detach(self.tiers, self._client)

    def declare(self, namespace: Namespace) -> Namespace:
        return self.tiers.declare(namespace)

    def _l2(self, ns: Namespace) -> SyncStore | None:
        return self.store if ns.l2 else None

    def _behind(self, ns: Namespace) -> WriteBehind | None:
        return self.write_behind if ns.strategy is Strategy.WRITE_BEHIND else None

    def _lookup(self, ns: Namespace, key: str) -> tuple[Entry | None, Entry | None]:
        fresh, stale = self.tiers.l1_fresh(ns, key)
        if fresh is not None:
            return fresh, None
        behind = self._behind(ns)
        pending = behind.pending(ns, key) if behind is not None else None
        if pending is not None and pending.fresh(self.tiers.clock()):
            self.tiers.counts[ns.name].l1_hits += 1  # this process's write, not yet in L2
            return pending, None
        store = self._l2(ns)
        if store is not None:
            ok, entry = self.tiers.accept_l2(
                ns, key, self.tiers.from_l2(store.get(self.tiers.l2_key(ns, key)))
            )
            if ok:
                return entry, None
            stale = newer(stale, entry)
        return None, stale

    def get(self, key: str, default: Any = None, *, namespace: str = "default") -> Any:
        ns = self.tiers.resolve(namespace, key)
        self.adaptive.on_read(ns, key)
        self.top_keys.on_read(ns, key)
        fresh, _ = self._lookup(ns, key)
        if fresh is None:
            self.tiers.counts[ns.name].misses += 1
            return default
        return fresh.value

    def set(
        self, key: str, value: Any, *, namespace: str = "default", ttl_s: float | None = None
    ) -> None:
        """Write-through: in L1 and L2 when this returns. Write-behind: in L1 and the queue
        (or, the queue being full, in L2 as write-through)."""
        self._set(self.tiers.resolve(namespace, key), key, value, ttl_s, through=False)

    def _set(self, ns: Namespace, key: str, value: Any, ttl_s: float | None, through: bool) -> None:
        if ns.adaptive_max_ttl_s is not None and ttl_s is None:
            ttl_s = self.adaptive.of(ns).on_write(key, self.tiers.codec.dumps(value))
        entry, data = self.tiers.make(ns, value, ttl_s)
        self.tiers.keep_l1(ns, key, entry)
        behind = self._behind(ns)
        if behind is not None:
            if not through and behind.write(ns, key, entry, data):
                return
            behind.discard(ns, key)  # an older queued value must not land after this one
        store = self._l2(ns)
        if store is not None:
            store.set(self.tiers.l2_key(ns, key), data, self.tiers.l2_ttl(entry))
        self._publish(ns, key)

    def delete(self, key: str, *, namespace: str = "default") -> None:
        ns = self.tiers.resolve(namespace, key)
        behind = self._behind(ns)
        if behind is not None:
            behind.discard(ns, key)
        self.tiers.l1[ns.name].delete(key)
        store = self._l2(ns)
        if store is not None:
            store.delete(self.tiers.l2_key(ns, key))
        self._publish(ns, key)

    def _publish(self, ns: Namespace, key: str | None) -> None:
        if self._invalidation and ns.l1 and self.store is not None:
            self.store.publish(self.tiers.channel, self.tiers.invalidation(ns, key))

    def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        *,
        namespace: str = "default",
        ttl_s: float | None = None,
    ) -> Any:
        ns = self.tiers.resolve(namespace, key)
        self.adaptive.on_read(ns, key)
        self.top_keys.on_read(ns, key)
        fresh, stale = self._lookup(ns, key)
        if fresh is not None:
            if ns.refresh_ahead:
                self.refresher.maybe(ns, key, fresh, loader, ttl_s)
            return fresh.value
        self.tiers.counts[ns.name].misses += 1
        flight_key = (ns.name, key)
        with self._flights_lock:
            flight = self._flights.get(flight_key)
            leader = flight is None
            if flight is None:
                flight = self._flights[flight_key] = Future()
        if not leader:
            return flight.result()
        try:
            value = self._load(ns, key, loader, ttl_s, stale)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            with self._flights_lock:
                self._flights.pop(flight_key, None)

    def _load(
        self,
        ns: Namespace,
        key: str,
        loader: Callable[[], Any],
        ttl_s: float | None,
        stale: Entry | None,
    ) -> Any:
        store = self._l2(ns)
        token = self.tiers.new_token()
        lease_key = self.tiers.lease_key(ns, key)
        held = store.acquire(lease_key, token, ns.lease_s) if store is not None else None
        if store is not None and held is False:
            found = self._await_holder(ns, key, store)
            if found is not None:
                return found.value
            held = store.acquire(lease_key, token, ns.lease_s)
        try:
            self.tiers.counts[ns.name].loads += 1
            started = time.perf_counter()
            try:
                value, ttl_s = unwrap(loader(), ttl_s)
            except Exception as exc:
                return self.tiers.stale_fallback(ns, stale, exc)
            finally:
                self.tiers.loaded(ns, started)
            # Through, whatever the strategy: other processes wait for it in L2.
            self._set(ns, key, value, ttl_s, through=True)
            return value
        finally:
            if held and store is not None:
                store.release(lease_key, token)

    def _await_holder(self, ns: Namespace, key: str, store: SyncStore) -> Entry | None:
        """Another process loads the key: poll L2 for its value while its lease lasts."""
        self.tiers.counts[ns.name].lease_waits += 1
        deadline = self.tiers.clock() + ns.lease_s
        l2_key = self.tiers.l2_key(ns, key)
        while self.tiers.clock() < deadline:
            ok, entry = self.tiers.accept_l2(ns, key, self.tiers.from_l2(store.get(l2_key)))
            if ok:
                return entry
            self._sleep(LEASE_POLL_S)
        return None

    def cached(
        self,
        *,
        namespace: str = "default",
        ttl_s: float | None = None,
        key: Callable[..., str] | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a function: its result is cached under ``key(*args, **kwargs)`` (by
        default the function's qualified name and its arguments' ``repr``)."""

        def decorate(func: Callable[P, R]) -> Callable[P, R]:
            make_key = key or default_key(func)

            @functools.wraps(func)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                result: R = self.get_or_set(
                    make_key(*args, **kwargs),
                    lambda: func(*args, **kwargs),
                    namespace=namespace,
                    ttl_s=ttl_s,
                )
                return result

            return wrapper

        return decorate


def default_key(func: Callable[..., Any]) -> Callable[..., str]:
    name = f"{func.__module__}.{func.__qualname__}"

    def make(*args: Any, **kwargs: Any) -> str:
        return f"{name}:{args!r}:{sorted(kwargs.items())!r}"

    return make


__all__ = ["Cache"]
