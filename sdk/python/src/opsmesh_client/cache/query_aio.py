"""The L3 query cache for asyncio: ``AsyncQueryCache`` over an ``AsyncCache``, psycopg's
``AsyncConnection`` and ``redis.asyncio``. The keys, stamps, triggers and the rules for
an instance that cannot listen are those of ``query.py`` (which says why).

    l3 = AsyncQueryCache(cache, redis_url, dsn)
    await l3.start()  # queries bypass the cache until the watcher listens
    rows = await l3.fetch_all(conn, "SELECT name FROM authors WHERE id = %s", [uid])
    await l3.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from opsmesh_client.cache.aio import AsyncCache
from opsmesh_client.cache.query import NOTIFY_CHANNEL, GenerationKeys, Stamp, tables_of
from opsmesh_client.cache.query_text import fingerprint

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger("opsmesh_client.cache")

_POLL_S = 0.5
_BACKOFF_MAX_S = 5.0


class AsyncGenerations(GenerationKeys):
    def __init__(self, client: redis.asyncio.Redis, prefix: str) -> None:
        import redis as redis_module  # noqa: PLC0415 - optional extra

        super().__init__(prefix)
        self._redis = client
        self._errors = (redis_module.RedisError, OSError)

    async def read(self, tables: frozenset[str]) -> Stamp | None:
        ordered = sorted(tables)
        try:
            new = self._new_tables(ordered)
            if new:
                await self._redis.sadd(self._tables_key, *new)
                self._known.update(new)
            epoch, *values = await self._redis.mget([self._epoch_key, *map(self._key, ordered)])
            if epoch is None:  # a Redis that lost its data: generations start again
                await self._redis.set(self._epoch_key, uuid.uuid4().hex, nx=True)
                epoch = await self._redis.get(self._epoch_key)
        except self._errors as exc:
            log.warning("query cache: reading generations failed: %s", type(exc).__name__)
            return None
        return self._stamp(ordered, epoch, values)

    async def bump(self, tables: Iterable[str]) -> bool:
        pipe = self._redis.pipeline(transaction=False)
        for table in tables:
            pipe.incr(self._key(table))
        try:
            await pipe.execute()
        except self._errors as exc:
            log.warning("query cache: bumping generations failed: %s", type(exc).__name__)
            return False
        return True

    async def bump_all(self) -> bool:
        try:
            members = await self._redis.smembers(self._tables_key)
            known = [t.decode() if isinstance(t, bytes) else str(t) for t in members]
        except self._errors as exc:
            log.warning("query cache: reading the cached tables failed: %s", type(exc).__name__)
            return False
        return await self.bump(known) if known else True


class AsyncTableWatcher:
    """``TableWatcher`` on an asyncio task, over ``psycopg.AsyncConnection``."""

    def __init__(
        self, dsn: str, generations: AsyncGenerations, channel: str = NOTIFY_CHANNEL
    ) -> None:
        self._dsn = dsn
        self._generations = generations
        self._channel = channel
        self.listening = asyncio.Event()
        self.notifications = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="opsmesh-cache-l3"
            )

    async def _run(self) -> None:
        import psycopg  # noqa: PLC0415 - optional
        from psycopg import sql  # noqa: PLC0415

        backoff = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=5
                )
                async with conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    # Writes before the LISTEN went unseen: whatever is cached may be old.
                    await self._until_done(self._generations.bump_all)
                    backoff = 0.1
                    while True:
                        async for notify in conn.notifies(timeout=_POLL_S):
                            self.notifications += 1
                            await self._until_done(
                                functools.partial(self._generations.bump, [notify.payload])
                            )
            except (psycopg.Error, OSError) as exc:
                log.warning("query cache: listening failed: %s", type(exc).__name__)
            self.listening.clear()
            await asyncio.sleep(backoff)  # the reconnection's backoff
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _until_done(self, bump: Callable[[], Awaitable[bool]]) -> None:
        backoff = 0.1
        while not await bump():
            self.listening.clear()
            await asyncio.sleep(backoff)  # Redis refused: retry with backoff
            backoff = min(backoff * 2, _BACKOFF_MAX_S)
        self.listening.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.listening.clear()


class AsyncQueryCache:
    """``QueryCache`` for asyncio (``start`` before use, ``aclose`` after)."""

    def __init__(
        self,
        cache: AsyncCache,
        redis_client: redis.asyncio.Redis | str,
        dsn: str,
        *,
        namespace: str = "query",
        channel: str = NOTIFY_CHANNEL,
    ) -> None:
        import redis.asyncio as redis_asyncio  # noqa: PLC0415 - optional extra

        self._owns_client = isinstance(redis_client, str)
        self._client = (
            redis_asyncio.Redis.from_url(redis_client)
            if isinstance(redis_client, str)
            else redis_client
        )
        self.cache = cache
        self.namespace = cache.tiers.namespace(namespace).name
        cache.tiers.l3_namespaces.add(self.namespace)
        self.generations = AsyncGenerations(self._client, cache.tiers.prefix)
        self.watcher = AsyncTableWatcher(dsn, self.generations, channel)

    @property
    def bypassed(self) -> int:
        """Queries run uncached because this instance could not listen (per namespace:
        query caches sharing one count it together)."""
        return self.cache.tiers.counts[self.namespace].l3_bypassed

    async def start(self) -> None:
        self.watcher.start()

    async def fetch_all(
        self,
        conn: Any,
        sql: str,
        params: Any = None,
        *,
        tables: Iterable[str] | None = None,
        ttl_s: float | None = None,
    ) -> list[tuple[Any, ...]]:
        async def run() -> list[list[Any]]:
            cursor = await conn.execute(sql, params)
            return [list(row) for row in await cursor.fetchall()]

        rows = await self.get_or_run(sql, params, run, tables=tables, ttl_s=ttl_s)
        return [tuple(row) for row in rows]

    async def get_or_run(
        self,
        sql: str,
        params: Any,
        run: Callable[[], Awaitable[Any]],
        *,
        tables: Iterable[str] | None = None,
        ttl_s: float | None = None,
    ) -> Any:
        normalized, read = tables_of(sql, tables)
        if not self.watcher.listening.is_set():
            self.cache.tiers.counts[self.namespace].l3_bypassed += 1
            return await run()
        stamp = await self.generations.read(read)
        if stamp is None:
            self.cache.tiers.counts[self.namespace].l3_bypassed += 1
            return await run()
        key = f"{fingerprint(normalized, params)}:{stamp.digest()}"
        return await self.cache.get_or_set(key, run, namespace=self.namespace, ttl_s=ttl_s)

    async def aclose(self) -> None:
        await self.watcher.close()
        if self._owns_client:
            await self._client.aclose()
