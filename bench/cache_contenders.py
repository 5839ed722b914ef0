"""The caches ``bench.cache`` compares, behind one small interface: get, set and
get-or-load with each library's own stampede protection."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiocache import RedisCache, SimpleMemoryCache
from aiocache.lock import RedLock
from cashews import Cache as Cashews

from opsmesh_client.cache import AsyncCache, AsyncRedisStore, Namespace
from opsmesh_client.client import Client
from opsmesh_client.settings import load
from opsmesh_client.testing import MemoryTransports

Origin = Callable[[str], Awaitable[Any]]
NAMESPACE = "bench"
LEASE_S = 2.0  # the stampede locks' lease: well above the origin's 5 ms
REFRESH_AHEAD = 0.2  # with --refresh-ahead: a read in the last fifth of the TTL reloads


class Contender(Protocol):
    name: str

    async def get(self, key: str) -> Any: ...
    async def set(self, key: str, value: Any) -> None: ...
    async def get_or_load(self, key: str, origin: Origin) -> Any: ...
    async def close(self) -> None: ...


def zipf_namespace(ttl_s: float, *, refresh_ahead: bool) -> Namespace:
    """The SDK's namespace for the workloads: the one place refresh-ahead is switched on."""
    options: dict[str, Any] = {}
    if refresh_ahead:
        # Refresh-ahead is being added beside this benchmark (issue 15: a namespace's
        # ``refresh_ahead``, the last fraction of the TTL in which a read reloads the key).
        # Where the SDK has no such field the run says so rather than measuring something
        # else under its name.
        if "refresh_ahead" not in {f.name for f in dataclasses.fields(Namespace)}:
            raise SystemExit("--refresh-ahead: the SDK's cache has no refresh-ahead here")
        options["refresh_ahead"] = REFRESH_AHEAD
    return Namespace(NAMESPACE, ttl_s=ttl_s, lease_s=LEASE_S, **options)


class Opsmesh:
    """``AsyncCache`` over ``AsyncRedisStore``; with ``metrics``, given an opsmesh client
    (collecting every 2 s, as by default, into an in-memory transport)."""

    def __init__(self, name: str, url: str, prefix: str, ttl_s: float, **options: Any) -> None:
        self.name = name
        self._store = AsyncRedisStore(url)
        self._client = (
            Client(load({}, service="bench", kafka="unused:1"), transport=MemoryTransports())
            if options.get("metrics")
            else None
        )
        namespace = zipf_namespace(ttl_s, refresh_ahead=options.get("refresh_ahead", False))
        self.cache = AsyncCache(self._store, [namespace], prefix=prefix, client=self._client)

    async def open(self) -> None:
        await self.cache.start()
        # L1 is used once invalidations can arrive: wait for the subscription.
        for _ in range(1000):
            if self.cache.tiers.subscribed.is_set():
                return
            await asyncio.sleep(0.01)  # polling the subscription, bounded by the loop
        raise RuntimeError("the cache did not subscribe to invalidations")

    async def get(self, key: str) -> Any:
        return await self.cache.get(key, namespace=NAMESPACE)

    async def set(self, key: str, value: Any) -> None:
        await self.cache.set(key, value, namespace=NAMESPACE)

    async def get_or_load(self, key: str, origin: Origin) -> Any:
        return await self.cache.get_or_set(key, lambda: origin(key), namespace=NAMESPACE)

    async def close(self) -> None:
        await self.cache.aclose()
        await self._store.aclose()
        if self._client is not None:
            self._client.close()


class CashewsContender:
    """cashews' two layers (``client_side=True``: memory over Redis, invalidated through
    Redis client tracking) and its stampede protection (``protected`` + ``lock``)."""

    def __init__(self, name: str, url: str, prefix: str, ttl_s: float, **_: Any) -> None:
        self.name = name
        self._prefix = f"{prefix}:"
        self._ttl_s = ttl_s
        self._cache = Cashews()
        self._cache.setup(url, client_side=True, client_side_prefix=self._prefix)
        self._origin: Origin | None = None

        @self._cache(ttl=ttl_s, key=self._prefix + "{key}", lock=True, protected=True)
        async def loaded(key: str) -> Any:
            assert self._origin is not None
            return await self._origin(key)

        self._loaded = loaded

    async def open(self) -> None:
        await self._cache.init()

    async def get(self, key: str) -> Any:
        return await self._cache.get(self._prefix + key)

    async def set(self, key: str, value: Any) -> None:
        await self._cache.set(self._prefix + key, value, expire=self._ttl_s)

    async def get_or_load(self, key: str, origin: Origin) -> Any:
        self._origin = origin
        return await self._loaded(key)

    async def close(self) -> None:
        await self._cache.close()


class AiocacheContender:
    """aiocache's ``SimpleMemoryCache`` in front of its ``RedisCache`` (it has no two-tier
    cache of its own), with ``RedLock`` around the load, as its ``cached_stampede`` does."""

    def __init__(self, name: str, url: str, prefix: str, ttl_s: float, **_: Any) -> None:
        self.name = name
        parts = urlsplit(url)
        db = int(parts.path.strip("/") or 0)
        self._memory = SimpleMemoryCache(namespace=prefix)
        self._redis = RedisCache(
            endpoint=parts.hostname, port=parts.port or 6379, db=db, namespace=prefix
        )
        self._ttl_s = ttl_s

    async def open(self) -> None:
        return None

    async def get(self, key: str) -> Any:
        value = await self._memory.get(key)
        if value is None:
            value = await self._redis.get(key)
            if value is not None:
                await self._memory.set(key, value, ttl=self._ttl_s)
        return value

    async def set(self, key: str, value: Any) -> None:
        await self._redis.set(key, value, ttl=self._ttl_s)
        await self._memory.set(key, value, ttl=self._ttl_s)

    async def get_or_load(self, key: str, origin: Origin) -> Any:
        value = await self.get(key)
        if value is None:
            async with RedLock(self._redis, key, lease=LEASE_S):
                value = await self._redis.get(key)
                if value is None:
                    value = await origin(key)
                    await self._redis.set(key, value, ttl=self._ttl_s)
            await self._memory.set(key, value, ttl=self._ttl_s)
        return value

    async def close(self) -> None:
        await self._redis.close()
        await self._memory.close()


CONTENDERS: dict[str, Callable[..., Any]] = {
    "opsmesh": Opsmesh,
    "opsmesh+metrics": lambda *a, **k: Opsmesh(*a, metrics=True, **k),
    "cashews": CashewsContender,
    "aiocache": AiocacheContender,
}


async def open_contender(
    name: str, url: str, prefix: str, ttl_s: float, *, refresh_ahead: bool = False
) -> Contender:
    contender = CONTENDERS[name](name, url, prefix, ttl_s, refresh_ahead=refresh_ahead)
    await contender.open()
    made: Contender = contender
    return made
