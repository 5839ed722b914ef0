"""``Bootstrap``: how a service's own objects come to be once its resources are open.

A composition root (``app.py``) is pure wiring: ``build(settings)`` creates the
``Runtime`` (Kafka, PostgreSQL, Redis, opened as cleanup contexts) and names one
``async def bootstrap(runtime) -> Services`` that constructs the service's stores,
stages and façades from the open resources. ``init_app`` runs it as a cleanup context
after the resources, stores the result under its typed ``AppKey`` (handlers read
``request.app[KEY]``) and hands it to the workers. Tests swap in fakes in one place: a
different ``open``.

Closing runs in reverse: the workers drain first, then a ``Services`` with an ``aclose``
method is closed, then the resources.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from aiohttp import web

S = TypeVar("S")
# A background worker: runs until the stop event is set, then drains.
Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@runtime_checkable
class Closable(Protocol):
    async def aclose(self) -> None: ...


def _no_workers(_: Any) -> Sequence[tuple[str, Worker]]:
    return ()


@dataclass(frozen=True, slots=True)
class Bootstrap(Generic[S]):
    """``open`` makes the services once the resources are open; ``workers`` are the
    background workers over them (consumers, periodic loops)."""

    key: web.AppKey[S]
    open: Callable[[], Awaitable[S]]
    workers: Callable[[S], Sequence[tuple[str, Worker]]] = _no_workers

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """The cleanup context: open, keep under ``key``, close after the workers."""
        services = await self.open()
        app[self.key] = services
        try:
            yield
        finally:
            if isinstance(services, Closable):
                await services.aclose()

    def workers_of(self, app: web.Application) -> Sequence[tuple[str, Worker]]:
        return self.workers(app[self.key])
