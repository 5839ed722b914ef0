"""Invalidation of every instance's L1 over Redis pub/sub.

Each ``set`` and ``delete`` publishes ``[instance, namespace, key]`` on one channel per
prefix; each instance drops that key from its L1 when another instance's message arrives.
Pub/sub delivers only to connected subscribers, so an instance that is not subscribed
(starting, or its connection lost) cannot know what it missed: while unsubscribed its L1
is bypassed, and it is cleared when the subscription is (re)made. The bound on an L1
serving an overwritten value is thus the message's delivery time while subscribed, and
nothing otherwise (keyspace notifications were not chosen: they need a server setting,
``notify-keyspace-events``, that managed Redis services often refuse, and they would not
say which instance wrote).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis
    import redis.asyncio

log = logging.getLogger("opsmesh_client.cache")

OnMessage = Callable[[bytes], None]
OnState = Callable[[bool], None]  # True: subscribed; False: messages may be missed
_BACKOFF_MAX_S = 5.0
_POLL_S = 0.5


class Listener(Protocol):
    def close(self) -> None: ...


class AsyncListener(Protocol):
    async def close(self) -> None: ...


class ThreadListener:
    """Subscribed on its own daemon thread; reconnects with capped exponential backoff."""

    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        on_message: OnMessage,
        on_state: OnState,
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_message = on_message
        self._on_state = on_state
        self._errors = errors
        self._stop = threading.Event()
        self._pubsub: Any = self._subscribe()
        self._thread = threading.Thread(target=self._run, name="opsmesh-cache-inval", daemon=True)
        self._thread.start()

    def _subscribe(self) -> Any:
        try:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            pubsub.subscribe(self._channel)
        except self._errors as exc:
            log.warning("cache invalidation: cannot subscribe: %s", type(exc).__name__)
            return None
        self._on_state(True)
        return pubsub

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            if self._pubsub is None:
                self._pubsub = self._subscribe()
                if self._pubsub is None:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)
                    continue
                backoff = 0.1
            try:
                message = self._pubsub.get_message(timeout=_POLL_S)
            except self._errors as exc:
                log.warning("cache invalidation: subscription lost: %s", type(exc).__name__)
                self._on_state(False)
                with contextlib.suppress(*self._errors):
                    self._pubsub.close()
                self._pubsub = None
                continue
            if message is not None and message.get("type") == "message":
                self._on_message(message["data"])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=_POLL_S * 4)
        if self._pubsub is not None:
            with contextlib.suppress(*self._errors):
                self._pubsub.close()


class TaskListener:
    """The same on an asyncio task; made by ``await TaskListener.start(...)``."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        channel: str,
        on_message: OnMessage,
        on_state: OnState,
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_message = on_message
        self._on_state = on_state
        self._errors = errors
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        client: redis.asyncio.Redis,
        channel: str,
        on_message: OnMessage,
        on_state: OnState,
        errors: tuple[type[BaseException], ...],
    ) -> TaskListener:
        listener = cls(client, channel, on_message, on_state, errors)
        listener._pubsub = await listener._subscribe()
        listener._task = asyncio.create_task(listener._run(), name="opsmesh-cache-inval")
        return listener

    async def _subscribe(self) -> Any:
        try:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(self._channel)
        except self._errors as exc:
            log.warning("cache invalidation: cannot subscribe: %s", type(exc).__name__)
            return None
        self._on_state(True)
        return pubsub

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if self._pubsub is None:
                self._pubsub = await self._subscribe()
                if self._pubsub is None:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)
                    continue
                backoff = 0.1
            try:
                message = await self._pubsub.get_message(timeout=_POLL_S)
            except self._errors as exc:
                log.warning("cache invalidation: subscription lost: %s", type(exc).__name__)
                self._on_state(False)
                with contextlib.suppress(*self._errors):
                    await self._pubsub.aclose()
                self._pubsub = None
                continue
            if message is not None and message.get("type") == "message":
                self._on_message(message["data"])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            with contextlib.suppress(*self._errors):
                await self._pubsub.aclose()
