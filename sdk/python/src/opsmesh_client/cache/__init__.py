"""A multi-tier cache: L1 in-process (LRU bounded by entries and bytes), L2 Redis shared by
every instance, per-namespace settings, one origin load per key across instances
(single flight in-process, a Redis lease across processes) and stale values served when
the loader fails. Usable without the rest of the SDK; Redis comes with
``opsmesh-client[redis]``.

    from opsmesh_client.cache import Cache, Namespace, RedisStore
    cache = Cache(RedisStore("redis://localhost:6379/0"), [Namespace("api", ttl_s=30)])
    user = cache.get_or_set(f"user:{uid}", lambda: load_user(uid), namespace="api")

``AsyncCache`` with ``AsyncRedisStore`` is the same for asyncio. Per namespace:
write-through or write-behind, refresh-ahead, adaptive TTL and warming of the most-read
keys (``write_behind``, ``refresh``, ``adaptive``, ``warming``); ``query`` is the L3
query-result cache. docs/caching.md in the mesh's repository says what is built and what
is not.
"""

from __future__ import annotations

from opsmesh_client.cache.aio import AsyncCache
from opsmesh_client.cache.base import Counts, Loaded
from opsmesh_client.cache.entry import Codec, JsonCodec
from opsmesh_client.cache.l2 import AsyncRedisStore, AsyncStore, RedisStore, SyncStore
from opsmesh_client.cache.settings import CacheError, Namespace, Strategy
from opsmesh_client.cache.sync import Cache

__all__ = [
    "AsyncCache",
    "AsyncRedisStore",
    "AsyncStore",
    "Cache",
    "CacheError",
    "Codec",
    "Counts",
    "JsonCodec",
    "Loaded",
    "Namespace",
    "RedisStore",
    "Strategy",
    "SyncStore",
]
