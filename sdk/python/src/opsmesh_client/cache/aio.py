"""The cache for asyncio applications: the same tiers and policies as ``Cache``.

``get_or_set`` loads a missing key once per process (single flight: concurrent callers
wait for the first) and once across processes (the first takes a Redis lease; the others
poll L2 for its value until the lease ends, then load themselves). When the loader fails,
a stale value (within ``stale_s`` after expiry) is served instead of the error.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opsmesh_client.cache.adaptive import Adaptive
from opsmesh_client.cache.base import LEASE_POLL_S, Clock, Tiers, newer, unwrap
from opsmesh_client.cache.entry import Codec, Entry
from opsmesh_client.cache.invalidation import AsyncListener
from opsmesh_client.cache.l2 import AsyncStore
from opsmesh_client.cache.observed import AsyncTimedStore, attach, detach
from opsmesh_client.cache.refresh import AsyncRefresher
from opsmesh_client.cache.settings import Namespace, Strategy
from opsmesh_client.cache.sync import default_key
from opsmesh_client.cache.warming import TopKeys, asave_top_keys
from opsmesh_client.cache.write_behind import AsyncWriteBehind

if TYPE_CHECKING:
    from opsmesh_client.client import Client

P = ParamSpec("P")
R = TypeVar("R")


class AsyncCache:
    def __init__(
        self,
        store: AsyncStore | None = None,
        namespaces: Iterable[Namespace] = (),
        *,
        prefix: str = "opsmesh-cache",
        codec: Codec | None = None,
        clock: Clock = time.time,
        invalidation: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        client: Client | None = None,
    ) -> None:
        self.tiers = Tiers(namespaces, prefix=prefix, codec=codec, clock=clock)
        self.adaptive = Adaptive(clock)
        self.top_keys = TopKeys()
        # With an opsmesh client the cache's figures are published (cache.observed).
        self._client = client
        if client is not None:
            attach(self.tiers, client, l2=store is not None)
            store = AsyncTimedStore(store, self.tiers) if store is not None else None
        self.store = store
        self._sleep = sleep
        # With a store, another instance's writes reach this L1 over pub/sub; until the
        # subscription is made (``start`` for the async cache) L1 is bypassed.
        self._invalidation = store is not None and invalidation
        if self._invalidation:
            self.tiers.l1_trusted = False
        self._listener: AsyncListener | None = None
        self._flights: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self.write_behind = (
            AsyncWriteBehind(self.tiers, store, self._invalidation, sleep)
            if store is not None
            else None
        )
        self.refresher = AsyncRefresher(
            self.tiers, store, lambda ns, key, value, ttl: self._set(ns, key, value, ttl, True)
        )

    async def start(self) -> None:
        """Subscribe to invalidations (L1 is bypassed until this is done)."""
        if self._invalidation and self.store is not None and self._listener is None:
            self._listener = await self.store.listen(
                self.tiers.channel, self.tiers.on_invalidation, self.tiers.on_subscription
            )

    async def aclose(self) -> None:
        """As ``Cache.close``."""
        await self.refresher.aclose()
        if self.write_behind is not None:
            await self.write_behind.aclose()
        if self.store is not None:
            await asave_top_keys(self.tiers, self.store, self.top_keys)
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        self.tiers.l1_trusted = not self._invalidation
        detach(self.tiers, self._client)

    def declare(self, namespace: Namespace) -> Namespace:
        return self.tiers.declare(namespace)

    def _l2(self, ns: Namespace) -> AsyncStore | None:
        return self.store if ns.l2 else None

    def _behind(self, ns: Namespace) -> AsyncWriteBehind | None:
        return self.write_behind if ns.strategy is Strategy.WRITE_BEHIND else None

    async def _lookup(self, ns: Namespace, key: str) -> tuple[Entry | None, Entry | None]:
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
                ns, key, self.tiers.from_l2(await store.get(self.tiers.l2_key(ns, key)))
            )
            if ok:
                return entry, None
            stale = newer(stale, entry)
        return None, stale

    async def get(self, key: str, default: Any = None, *, namespace: str = "default") -> Any:
        ns = self.tiers.resolve(namespace, key)
        self.adaptive.on_read(ns, key)
        self.top_keys.on_read(ns, key)
        fresh, _ = await self._lookup(ns, key)
        if fresh is None:
            self.tiers.counts[ns.name].misses += 1
            return default
        return fresh.value

    async def set(
        self, key: str, value: Any, *, namespace: str = "default", ttl_s: float | None = None
    ) -> None:
        """As ``Cache.set`` (write-through or write-behind by the namespace's strategy)."""
        await self._set(self.tiers.resolve(namespace, key), key, value, ttl_s, through=False)

    async def _set(
        self, ns: Namespace, key: str, value: Any, ttl_s: float | None, through: bool
    ) -> None:
        if ns.adaptive_max_ttl_s is not None and ttl_s is None:
            ttl_s = self.adaptive.of(ns).on_write(key, self.tiers.codec.dumps(value))
        entry, data = self.tiers.make(ns, value, ttl_s)
        self.tiers.keep_l1(ns, key, entry)
        behind = self._behind(ns)
        if behind is not None:
            if not through and behind.write(ns, key, entry, data):
                return
            await behind.discard(ns, key)  # an older queued value must not land after this
        store = self._l2(ns)
        if store is not None:
            await store.set(self.tiers.l2_key(ns, key), data, self.tiers.l2_ttl(entry))
        await self._publish(ns, key)

    async def delete(self, key: str, *, namespace: str = "default") -> None:
        ns = self.tiers.resolve(namespace, key)
        behind = self._behind(ns)
        if behind is not None:
            await behind.discard(ns, key)
        self.tiers.l1[ns.name].delete(key)
        store = self._l2(ns)
        if store is not None:
            await store.delete(self.tiers.l2_key(ns, key))
        await self._publish(ns, key)

    async def _publish(self, ns: Namespace, key: str | None) -> None:
        if self._invalidation and ns.l1 and self.store is not None:
            await self.store.publish(self.tiers.channel, self.tiers.invalidation(ns, key))

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        *,
        namespace: str = "default",
        ttl_s: float | None = None,
    ) -> Any:
        ns = self.tiers.resolve(namespace, key)
        self.adaptive.on_read(ns, key)
        self.top_keys.on_read(ns, key)
        fresh, stale = await self._lookup(ns, key)
        if fresh is not None:
            if ns.refresh_ahead:
                self.refresher.maybe(ns, key, fresh, loader, ttl_s)
            return fresh.value
        self.tiers.counts[ns.name].misses += 1
        flight_key = (ns.name, key)
        flight = self._flights.get(flight_key)
        if flight is not None:
            return await asyncio.shield(flight)
        flight = self._flights[flight_key] = asyncio.get_running_loop().create_future()
        try:
            value = await self._load(ns, key, loader, ttl_s, stale)
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            # Retrieved here so a flight nobody else awaited is not logged as unhandled.
            flight.exception()
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            self._flights.pop(flight_key, None)

    async def _load(
        self,
        ns: Namespace,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
        stale: Entry | None,
    ) -> Any:
        store = self._l2(ns)
        token = self.tiers.new_token()
        lease_key = self.tiers.lease_key(ns, key)
        held = await store.acquire(lease_key, token, ns.lease_s) if store is not None else None
        if store is not None and held is False:
            found = await self._await_holder(ns, key, store)
            if found is not None:
                return found.value
            held = await store.acquire(lease_key, token, ns.lease_s)
        try:
            self.tiers.counts[ns.name].loads += 1
            started = time.perf_counter()
            try:
                value, ttl_s = unwrap(await loader(), ttl_s)
            except Exception as exc:
                return self.tiers.stale_fallback(ns, stale, exc)
            finally:
                self.tiers.loaded(ns, started)
            # Through, whatever the strategy: other processes wait for it in L2.
            await self._set(ns, key, value, ttl_s, through=True)
            return value
        finally:
            if held and store is not None:
                await store.release(lease_key, token)

    async def _await_holder(self, ns: Namespace, key: str, store: AsyncStore) -> Entry | None:
        """Another process loads the key: poll L2 for its value while its lease lasts."""
        self.tiers.counts[ns.name].lease_waits += 1
        deadline = self.tiers.clock() + ns.lease_s
        l2_key = self.tiers.l2_key(ns, key)
        while self.tiers.clock() < deadline:
            ok, entry = self.tiers.accept_l2(ns, key, self.tiers.from_l2(await store.get(l2_key)))
            if ok:
                return entry
            await self._sleep(LEASE_POLL_S)
        return None

    def cached(
        self,
        *,
        namespace: str = "default",
        ttl_s: float | None = None,
        key: Callable[..., str] | None = None,
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        """Decorate a function: its result is cached under ``key(*args, **kwargs)`` (by
        default the function's qualified name and its arguments' ``repr``)."""

        def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            make_key = key or default_key(func)

            @functools.wraps(func)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                result: R = await self.get_or_set(
                    make_key(*args, **kwargs),
                    lambda: func(*args, **kwargs),
                    namespace=namespace,
                    ttl_s=ttl_s,
                )
                return result

            return wrapper

        return decorate


__all__ = ["AsyncCache"]
