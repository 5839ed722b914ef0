"""Warming: filling the cache before traffic asks for it.

- From a declared list: ``warm(cache, {key: loader, ...}, namespace=...)``.
- From the most-read keys of the last run: in a namespace with ``warm_top_keys=N`` the
  cache counts reads per key (``get`` and ``get_or_set``; ``TopKeys``, bounded), and on
  ``close``/``aclose`` replaces the sorted set ``<prefix>:top:<namespace>`` in Redis with
  its N most-read keys (kept a week). On start, ``warm_from_last_run(cache, namespace,
  loader)`` calls ``get_or_set(key, lambda: loader(key))`` for each of them, most-read
  first. With several instances the last one to close writes the ranking.

Both go through ``get_or_set``: a key already in L2 is only copied into L1, a missing one
is loaded once across instances (the lease), and several instances warming at once do
not stampede the origin. Warming is best-effort: a loader's failure is logged with its
class and counted, and the next key is warmed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsmesh_client.cache.base import Tiers
from opsmesh_client.cache.l2 import AsyncStore, SyncStore
from opsmesh_client.cache.settings import Namespace

if TYPE_CHECKING:
    from opsmesh_client.cache.aio import AsyncCache
    from opsmesh_client.cache.sync import Cache

log = logging.getLogger("opsmesh_client.cache")

RANKING_TTL_S = 7 * 86_400
_TRACKED_PER_TOP_KEY = 10  # keys counted per key kept: room for the ranking to change


@dataclass(slots=True)
class Warmed:
    warmed: int = 0
    failed: int = 0


class TopKeys:
    """Read counts per key of the namespaces with ``warm_top_keys``; each namespace counts
    at most ``10 x warm_top_keys`` keys (over that, the less-read half is forgotten)."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def on_read(self, ns: Namespace, key: str) -> None:
        if not ns.warm_top_keys:
            return
        with self._lock:
            counts = self._counts.setdefault(ns.name, {})
            counts[key] = counts.get(key, 0) + 1
            if len(counts) > ns.warm_top_keys * _TRACKED_PER_TOP_KEY:
                kept = sorted(counts.items(), key=lambda item: -item[1])[: len(counts) // 2]
                self._counts[ns.name] = dict(kept)

    def top(self, ns: Namespace) -> list[tuple[str, int]]:
        with self._lock:
            counts = self._counts.get(ns.name, {})
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            return ranked[: ns.warm_top_keys]


def ranking_key(tiers: Tiers, ns: Namespace) -> str:
    return f"{tiers.prefix}:top:{ns.name}"


def save_top_keys(tiers: Tiers, store: SyncStore, top: TopKeys) -> None:
    for ns in list(tiers.namespaces.values()):
        if ns.warm_top_keys:
            store.save_ranking(ranking_key(tiers, ns), top.top(ns), RANKING_TTL_S)


async def asave_top_keys(tiers: Tiers, store: AsyncStore, top: TopKeys) -> None:
    for ns in list(tiers.namespaces.values()):
        if ns.warm_top_keys:
            await store.save_ranking(ranking_key(tiers, ns), top.top(ns), RANKING_TTL_S)


def warm(cache: Cache, loaders: Mapping[str, Callable[[], Any]], *, namespace: str) -> Warmed:
    result = Warmed()
    for key, loader in loaders.items():
        try:
            cache.get_or_set(key, loader, namespace=namespace)
        except Exception as exc:
            result.failed += 1
            log.warning("cache warming of a key failed: %s", type(exc).__name__)
        else:
            result.warmed += 1
    return result


def warm_from_last_run(cache: Cache, namespace: str, loader: Callable[[str], Any]) -> Warmed:
    ns = cache.tiers.namespace(namespace)
    if cache.store is None or not ns.warm_top_keys:
        return Warmed()
    keys = cache.store.ranking(ranking_key(cache.tiers, ns), ns.warm_top_keys)
    return warm(cache, {key: _bind(loader, key) for key in keys}, namespace=namespace)


async def awarm(
    cache: AsyncCache, loaders: Mapping[str, Callable[[], Awaitable[Any]]], *, namespace: str
) -> Warmed:
    result = Warmed()
    for key, loader in loaders.items():
        try:
            await cache.get_or_set(key, loader, namespace=namespace)
        except Exception as exc:
            result.failed += 1
            log.warning("cache warming of a key failed: %s", type(exc).__name__)
        else:
            result.warmed += 1
    return result


async def awarm_from_last_run(
    cache: AsyncCache, namespace: str, loader: Callable[[str], Awaitable[Any]]
) -> Warmed:
    ns = cache.tiers.namespace(namespace)
    if cache.store is None or not ns.warm_top_keys:
        return Warmed()
    keys = await cache.store.ranking(ranking_key(cache.tiers, ns), ns.warm_top_keys)
    return await awarm(cache, {key: _bind(loader, key) for key in keys}, namespace=namespace)


def _bind(loader: Callable[[str], Any], key: str) -> Callable[[], Any]:
    return lambda: loader(key)
