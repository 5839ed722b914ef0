"""Fakes for tests of the cache's policies: a settable clock and an in-memory L2 that
expires by that clock and can be made to fail as an unreachable Redis does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

OnMessage = Callable[[bytes], None]
OnState = Callable[[bool], None]


class FakeClock:
    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.advance(seconds)


class MemoryStore:
    """L2 in a dict; ``failing`` makes every call behave as a Redis error does."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes | str, float]] = {}
        self._lock = threading.Lock()
        self.failing = False
        self.errors = 0
        self.gets = 0
        self.batches = 0
        self.rankings: dict[str, list[tuple[str, int]]] = {}
        self.published: list[str] = []
        self.subscribers: list[tuple[OnMessage, OnState]] = []

    def _live(self, key: str) -> bytes | str | None:
        item = self._data.get(key)
        if item is None or item[1] <= self._clock():
            self._data.pop(key, None)
            return None
        return item[0]

    def _fail(self) -> bool:
        if self.failing:
            self.errors += 1
        return self.failing

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        if self._fail():
            return None
        with self._lock:
            value = self._live(key)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, data: bytes, ttl_s: float) -> None:
        if not self._fail():
            with self._lock:
                self._data[key] = (data, self._clock() + ttl_s)

    def delete(self, key: str) -> None:
        if not self._fail():
            with self._lock:
                self._data.pop(key, None)

    def acquire(self, key: str, token: str, ttl_s: float) -> bool | None:
        if self._fail():
            return None
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (token, self._clock() + ttl_s)
            return True

    def release(self, key: str, token: str) -> None:
        if not self._fail():
            with self._lock:
                if self._live(key) == token:
                    del self._data[key]

    def publish(self, channel: str, message: str) -> None:
        """Delivered at once to every subscriber (one channel: the fake ignores its name)."""
        if self._fail():
            return
        self.published.append(message)
        for on_message, _ in list(self.subscribers):
            on_message(message.encode())

    def listen(self, channel: str, on_message: OnMessage, on_state: OnState) -> MemoryListener:
        subscriber = (on_message, on_state)
        self.subscribers.append(subscriber)
        on_state(True)
        return MemoryListener(self, subscriber)

    def write_batch(
        self, sets: Sequence[tuple[str, bytes, float]], channel: str, messages: Sequence[str]
    ) -> bool:
        self.batches += 1
        if self._fail():
            return False
        for key, data, ttl_s in sets:
            self.set(key, data, ttl_s)
        for message in messages:
            self.publish(channel, message)
        return True

    def save_ranking(self, key: str, scores: Sequence[tuple[str, int]], ttl_s: float) -> bool:
        if self._fail():
            return False
        with self._lock:
            self.rankings[key] = sorted(scores, key=lambda item: -item[1])
        return True

    def ranking(self, key: str, n: int) -> list[str]:
        if self._fail():
            return []
        with self._lock:
            return [member for member, _ in self.rankings.get(key, [])[:n]]

    def drop_subscriptions(self) -> None:
        """As a lost connection: every subscriber is told, and later messages missed."""
        subscribers, self.subscribers = self.subscribers, []
        for _, on_state in subscribers:
            on_state(False)


class MemoryListener:
    def __init__(self, store: MemoryStore, subscriber: tuple[OnMessage, OnState]) -> None:
        self._store = store
        self._subscriber = subscriber

    def close(self) -> None:
        if self._subscriber in self._store.subscribers:
            self._store.subscribers.remove(self._subscriber)

    def resubscribe(self) -> None:
        self._store.subscribers.append(self._subscriber)
        self._subscriber[1](True)


class AsyncMemoryListener:
    def __init__(self, listener: MemoryListener) -> None:
        self.listener = listener

    async def close(self) -> None:
        self.listener.close()


class AsyncMemoryStore:
    """``MemoryStore`` behind the async Protocol."""

    def __init__(self, clock: FakeClock) -> None:
        self.sync = MemoryStore(clock)

    @property
    def errors(self) -> int:
        return self.sync.errors

    async def get(self, key: str) -> bytes | None:
        return self.sync.get(key)

    async def set(self, key: str, data: bytes, ttl_s: float) -> None:
        self.sync.set(key, data, ttl_s)

    async def delete(self, key: str) -> None:
        self.sync.delete(key)

    async def acquire(self, key: str, token: str, ttl_s: float) -> bool | None:
        return self.sync.acquire(key, token, ttl_s)

    async def release(self, key: str, token: str) -> None:
        self.sync.release(key, token)

    async def publish(self, channel: str, message: str) -> None:
        self.sync.publish(channel, message)

    async def listen(
        self, channel: str, on_message: OnMessage, on_state: OnState
    ) -> AsyncMemoryListener:
        return AsyncMemoryListener(self.sync.listen(channel, on_message, on_state))

    async def write_batch(
        self, sets: Sequence[tuple[str, bytes, float]], channel: str, messages: Sequence[str]
    ) -> bool:
        return self.sync.write_batch(sets, channel, messages)

    async def save_ranking(self, key: str, scores: Sequence[tuple[str, int]], ttl_s: float) -> bool:
        return self.sync.save_ranking(key, scores, ttl_s)

    async def ranking(self, key: str, n: int) -> list[str]:
        return self.sync.ranking(key, n)
