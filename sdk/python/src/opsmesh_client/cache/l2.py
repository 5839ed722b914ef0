"""L2: the store shared by every instance (Redis), behind small Protocols so the policies
are tested against in-memory fakes (``opsmesh_client.cache.testing``).

A Redis that is down or slow must not take the application with it: the adapters turn
its errors into misses (``get``), skipped writes (``set``, ``delete``) and "no lease"
(``acquire`` returns ``None``, meaning the caller loads without one), and count them.
``redis`` is imported only when an adapter is made: install ``opsmesh-client[redis]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from opsmesh_client.cache.invalidation import (
    AsyncListener,
    Listener,
    OnMessage,
    OnState,
    TaskListener,
    ThreadListener,
)

if TYPE_CHECKING:
    import redis
    import redis.asyncio

log = logging.getLogger("opsmesh_client.cache")

# Delete the lease only if it is still ours: a holder slower than its lease must not
# release the lease of the process that took it over.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


# (key, bytes, ttl_s) for ``write_batch``.
Write = tuple[str, bytes, float]


class SyncStore(Protocol):
    @property
    def errors(self) -> int: ...

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, data: bytes, ttl_s: float) -> None: ...
    def delete(self, key: str) -> None: ...
    def acquire(self, key: str, token: str, ttl_s: float) -> bool | None: ...
    def release(self, key: str, token: str) -> None: ...
    def publish(self, channel: str, message: str) -> None: ...
    def listen(self, channel: str, on_message: OnMessage, on_state: OnState) -> Listener: ...
    def write_batch(self, sets: Sequence[Write], channel: str, messages: Sequence[str]) -> bool: ...
    def save_ranking(self, key: str, scores: Sequence[tuple[str, int]], ttl_s: float) -> bool: ...
    def ranking(self, key: str, n: int) -> list[str]: ...


class AsyncStore(Protocol):
    @property
    def errors(self) -> int: ...

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, data: bytes, ttl_s: float) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def acquire(self, key: str, token: str, ttl_s: float) -> bool | None: ...
    async def release(self, key: str, token: str) -> None: ...
    async def publish(self, channel: str, message: str) -> None: ...
    async def listen(
        self, channel: str, on_message: OnMessage, on_state: OnState
    ) -> AsyncListener: ...
    async def write_batch(
        self, sets: Sequence[Write], channel: str, messages: Sequence[str]
    ) -> bool: ...
    async def save_ranking(
        self, key: str, scores: Sequence[tuple[str, int]], ttl_s: float
    ) -> bool: ...
    async def ranking(self, key: str, n: int) -> list[str]: ...


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis  # noqa: PLC0415 - optional extra, imported when an adapter is made

    return (redis.RedisError, OSError)


class RedisStore:
    """Sync adapter over ``redis.Redis`` (give it a client, or a URL)."""

    def __init__(self, client: redis.Redis | str) -> None:
        import redis  # noqa: PLC0415 - optional extra, imported when an adapter is made

        self._redis = redis.Redis.from_url(client) if isinstance(client, str) else client
        self._release = self._redis.register_script(_RELEASE)
        self._errors = _redis_errors()
        self.errors = 0

    def _failed(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        log.warning("cache L2 %s failed: %s", what, type(exc).__name__)

    def get(self, key: str) -> bytes | None:
        try:
            data = self._redis.get(key)
        except self._errors as exc:
            self._failed("get", exc)
            return None
        return data if isinstance(data, bytes) else None

    def set(self, key: str, data: bytes, ttl_s: float) -> None:
        try:
            self._redis.set(key, data, px=_ms(ttl_s))
        except self._errors as exc:
            self._failed("set", exc)

    def delete(self, key: str) -> None:
        try:
            self._redis.delete(key)
        except self._errors as exc:
            self._failed("delete", exc)

    def acquire(self, key: str, token: str, ttl_s: float) -> bool | None:
        try:
            return bool(self._redis.set(key, token, nx=True, px=_ms(ttl_s)))
        except self._errors as exc:
            self._failed("lease", exc)
            return None

    def release(self, key: str, token: str) -> None:
        try:
            self._release(keys=[key], args=[token])
        except self._errors as exc:
            self._failed("release", exc)

    def publish(self, channel: str, message: str) -> None:
        try:
            self._redis.publish(channel, message)
        except self._errors as exc:
            self._failed("publish", exc)

    def listen(self, channel: str, on_message: OnMessage, on_state: OnState) -> Listener:
        return ThreadListener(self._redis, channel, on_message, on_state, self._errors)

    def write_batch(self, sets: Sequence[Write], channel: str, messages: Sequence[str]) -> bool:
        """The writes, then the invalidations, in one MULTI/EXEC round trip; False (and
        nothing written) when Redis failed, so the caller keeps them to send again."""
        pipe = self._redis.pipeline(transaction=True)
        for key, data, ttl_s in sets:
            pipe.set(key, data, px=_ms(ttl_s))
        for message in messages:
            pipe.publish(channel, message)
        try:
            pipe.execute()
        except self._errors as exc:
            self._failed("write batch", exc)
            return False
        return True

    def save_ranking(self, key: str, scores: Sequence[tuple[str, int]], ttl_s: float) -> bool:
        """Replace the sorted set ``key`` with ``scores`` (warming's most-read keys)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        if scores:
            pipe.zadd(key, dict(scores))
            pipe.pexpire(key, _ms(ttl_s))
        try:
            pipe.execute()
        except self._errors as exc:
            self._failed("save ranking", exc)
            return False
        return True

    def ranking(self, key: str, n: int) -> list[str]:
        """The ``n`` highest-scored members of ``key``, highest first."""
        try:
            members = self._redis.zrange(key, 0, n - 1, desc=True)
        except self._errors as exc:
            self._failed("ranking", exc)
            return []
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]


class AsyncRedisStore:
    """Async adapter over ``redis.asyncio.Redis`` (give it a client, or a URL)."""

    def __init__(self, client: redis.asyncio.Redis | str) -> None:
        import redis.asyncio  # noqa: PLC0415 - optional extra

        self._redis = redis.asyncio.Redis.from_url(client) if isinstance(client, str) else client
        self._release = self._redis.register_script(_RELEASE)
        self._errors = _redis_errors()
        self.errors = 0

    def _failed(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        log.warning("cache L2 %s failed: %s", what, type(exc).__name__)

    async def get(self, key: str) -> bytes | None:
        try:
            data = await self._redis.get(key)
        except self._errors as exc:
            self._failed("get", exc)
            return None
        return data if isinstance(data, bytes) else None

    async def set(self, key: str, data: bytes, ttl_s: float) -> None:
        try:
            await self._redis.set(key, data, px=_ms(ttl_s))
        except self._errors as exc:
            self._failed("set", exc)

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(key)
        except self._errors as exc:
            self._failed("delete", exc)

    async def acquire(self, key: str, token: str, ttl_s: float) -> bool | None:
        try:
            return bool(await self._redis.set(key, token, nx=True, px=_ms(ttl_s)))
        except self._errors as exc:
            self._failed("lease", exc)
            return None

    async def release(self, key: str, token: str) -> None:
        try:
            await self._release(keys=[key], args=[token])
        except self._errors as exc:
            self._failed("release", exc)

    async def publish(self, channel: str, message: str) -> None:
        try:
            await self._redis.publish(channel, message)
        except self._errors as exc:
            self._failed("publish", exc)

    async def listen(self, channel: str, on_message: OnMessage, on_state: OnState) -> AsyncListener:
        return await TaskListener.start(self._redis, channel, on_message, on_state, self._errors)

    async def write_batch(
        self, sets: Sequence[Write], channel: str, messages: Sequence[str]
    ) -> bool:
        """As ``RedisStore.write_batch``."""
        pipe = self._redis.pipeline(transaction=True)
        for key, data, ttl_s in sets:
            pipe.set(key, data, px=_ms(ttl_s))
        for message in messages:
            pipe.publish(channel, message)
        try:
            await pipe.execute()
        except self._errors as exc:
            self._failed("write batch", exc)
            return False
        return True

    async def save_ranking(self, key: str, scores: Sequence[tuple[str, int]], ttl_s: float) -> bool:
        """As ``RedisStore.save_ranking``."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        if scores:
            pipe.zadd(key, dict(scores))
            pipe.pexpire(key, _ms(ttl_s))
        try:
            await pipe.execute()
        except self._errors as exc:
            self._failed("save ranking", exc)
            return False
        return True

    async def ranking(self, key: str, n: int) -> list[str]:
        try:
            members = await self._redis.zrange(key, 0, n - 1, desc=True)
        except self._errors as exc:
            self._failed("ranking", exc)
            return []
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    async def aclose(self) -> None:
        await self._redis.aclose()
