"""``init_app``: the one way a service becomes an aiohttp application.

- ``/health/live``: the process answers; never depends on other systems (Kubernetes
  liveness semantics: restarting us would not fix a broken dependency).
- ``/health/ready``: each of the service's own dependencies answers within a timeout.
- ``/metrics``: the service's Prometheus registry.
Every request's ``traceparent`` is its trace context while it is handled
(``opsmesh.tracing.http``), so what a handler publishes continues the caller's trace.
Resources open in ``cleanup_ctx`` order and close in reverse; background workers get a
stop event on shutdown and a bounded time to drain (commit offsets, flush producers).

A worker that fails (raises) stops the service, and the process then exits with
``ExitStatus.WORKER_FAILED``, so a restart-on-failure supervisor restarts it. A shutdown
that overruns its deadline (HTTP drain + worker drain + ``RESOURCES_CLOSE_S``) ends the
process with ``ExitStatus.SHUTDOWN_DEADLINE``.
"""

from __future__ import annotations

import asyncio
import enum
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from opsmesh.logging import get_logger
from opsmesh.shutdown import CANCEL_GRACE_S, ShutdownDeadline
from opsmesh.tracing.http import trace_requests
from opsmesh.web.bootstrap import Bootstrap, Worker
from opsmesh.web.connections import ConnectionLimits, request_deadline, start_guarded

__all__ = [
    "REGISTRY_KEY",
    "RESOURCES_CLOSE_S",
    "SERVICE_KEY",
    "CleanupContext",
    "ExitStatus",
    "ReadinessCheck",
    "ServiceSpec",
    "Worker",  # defined in opsmesh.web.bootstrap; services import it from here too
    "init_app",
    "run_check",
    "run_checks",
    "run_service",
]

log = get_logger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]

SERVICE_KEY = web.AppKey("service", str)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
_STOP_KEY = web.AppKey("stop", asyncio.Event)
_STARTED_KEY = web.AppKey("started_at", float)
_FAILED_KEY = web.AppKey("failed_workers", list[str])
_DRAIN_KEY = web.AppKey("drain_timeout_s", float)

# Closing resources after the workers' drain (each bounded in opsmesh.runtime/kafka).
RESOURCES_CLOSE_S = 1.5


class ExitStatus(enum.IntEnum):
    OK = 0
    WORKER_FAILED = 70  # EX_SOFTWARE: a background worker raised
    SHUTDOWN_DEADLINE = 75  # EX_TEMPFAIL: the shutdown overran its bound and was cut short


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    name: str
    probe: Callable[[], Awaitable[None]]
    timeout_s: float = 2.0


@dataclass(slots=True)
class ServiceSpec:
    """What a composition root hands to ``init_app``."""

    name: str
    registry: CollectorRegistry
    resources: Sequence[CleanupContext] = ()
    readiness: Callable[[], Sequence[ReadinessCheck]] = lambda: ()
    workers: Callable[[], Sequence[tuple[str, Worker]]] = lambda: ()
    # The service's own objects, made once the resources are open (opsmesh.web.bootstrap).
    bootstrap: Bootstrap[Any] | None = None
    routes: Callable[[web.Application], None] = lambda app: None
    drain_timeout_s: float = 8.0
    middlewares: Sequence[Middleware] = field(default_factory=list)
    client_max_size: int = 1024 * 1024
    # False: request bodies reach the handlers as sent, Content-Encoding undone by the
    # service itself (with its own bounds), instead of by aiohttp's parser, which answers
    # a body that does not decompress by resetting the connection.
    auto_decompress: bool = True


def init_app(spec: ServiceSpec) -> web.Application:
    app = web.Application(
        # Outermost: a request's trace context (and span) covers every other middleware.
        middlewares=[trace_requests, request_deadline, *spec.middlewares],
        client_max_size=spec.client_max_size,
        handler_args={"auto_decompress": spec.auto_decompress},
    )
    app[SERVICE_KEY] = spec.name
    app[REGISTRY_KEY] = spec.registry
    app[_STARTED_KEY] = time.time()
    app[_FAILED_KEY] = []
    app[_DRAIN_KEY] = spec.drain_timeout_s

    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "service": spec.name})

    async def ready(_: web.Request) -> web.Response:
        checks = dict(await run_checks(spec.readiness()))
        if not checks:
            checks = {"startup": "pending"}
        ok = all(v == "ok" for v in checks.values())
        return web.json_response(
            {"status": "ready" if ok else "not_ready", "service": spec.name, "checks": checks},
            status=200 if ok else 503,
        )

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(spec.registry)
        response = web.Response(body=body)
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response

    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics)
    spec.routes(app)
    app.cleanup_ctx.extend(spec.resources)
    if spec.bootstrap is not None:
        app.cleanup_ctx.append(spec.bootstrap.context)
    app.cleanup_ctx.append(_workers_ctx(spec))
    return app


# Probes that timed out, still unwinding; kept referenced until they end.
_abandoned: set[asyncio.Task[None]] = set()


async def run_checks(checks: Iterable[ReadinessCheck]) -> list[tuple[str, str]]:
    """Each check's name and result (``ok``, ``timeout after …``, ``error: …``), run
    together; answers within the longest check's timeout."""
    return list(await asyncio.gather(*(run_check(c) for c in checks)))


async def run_check(check: ReadinessCheck) -> tuple[str, str]:
    """One check within its timeout; a probe that times out is cancelled, not awaited."""
    task: asyncio.Task[None] = asyncio.ensure_future(check.probe())
    done, _ = await asyncio.wait({task}, timeout=check.timeout_s)
    if not done:
        # Cancelled but not awaited: a probe stuck in I/O may take long to unwind (psycopg
        # cancelling a query on a hung server waits on that server), and readiness must
        # answer within its bound, naming what is down.
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget)
        return check.name, f"timeout after {check.timeout_s}s"
    exc = task.exception()
    if exc is not None:
        return check.name, f"error: {type(exc).__name__}: {exc}"[:300]
    return check.name, "ok"


def _forget(task: asyncio.Task[None]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned probe's failure is already reported


def _workers_ctx(spec: ServiceSpec) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        app[_STOP_KEY] = stop
        failed = app[_FAILED_KEY]

        def crash_is_fatal(task: asyncio.Task[None]) -> None:
            """A background worker that dies takes the process down: better a restart by
            the supervisor than a live process that silently stopped consuming."""
            if task.cancelled() or task.exception() is None:
                return
            failed.append(tasks[task])
            log.error(
                "worker failed; stopping the service"
                if not stop.is_set()
                else "worker ended with an error",
                worker=tasks[task],
                error=repr(task.exception()),
            )
            if not stop.is_set():  # once stopping, a second SIGTERM would cut the drain short
                os.kill(os.getpid(), signal.SIGTERM)

        # The services' workers first: the spec's (the self-report) read their groups.
        named = [*(spec.bootstrap.workers_of(app) if spec.bootstrap else ()), *spec.workers()]
        tasks: dict[asyncio.Task[None], str] = {
            asyncio.create_task(worker(stop), name=f"{spec.name}:{name}"): name
            for name, worker in named
        }
        for task in tasks:
            task.add_done_callback(crash_is_fatal)
        yield
        stop.set()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=spec.drain_timeout_s)
        for task in pending:
            log.warning("worker did not drain in time; cancelling", worker=tasks[task])
            task.cancel()
        if pending:
            # Bounded too: a worker that does not unwind on cancellation is left behind.
            await asyncio.wait(pending, timeout=CANCEL_GRACE_S)

    return ctx


def run_service(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_timeout_s: float,
    limits: ConnectionLimits | None = None,
) -> ExitStatus:
    """Serve until SIGTERM/SIGINT, then shut down gracefully: open requests get
    ``shutdown_timeout_s``, then the cleanup contexts run (workers drain). Connections go
    through the ``ConnectionGuard`` (limit, header deadline, keep-alive timeout). Returns
    the process's exit status."""
    deadline = ShutdownDeadline(
        shutdown_timeout_s + app[_DRAIN_KEY] + RESOURCES_CLOSE_S, ExitStatus.SHUTDOWN_DEADLINE
    )
    asyncio.run(
        _serve(
            app,
            host=host,
            port=port,
            shutdown_timeout_s=shutdown_timeout_s,
            limits=limits or ConnectionLimits(),
            deadline=deadline,
        )
    )
    deadline.cancel()
    failed = app[_FAILED_KEY]
    if failed:
        log.error("exiting after a worker failed", workers=sorted(set(failed)))
        return ExitStatus.WORKER_FAILED
    return ExitStatus.OK


async def _serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_timeout_s: float,
    limits: ConnectionLimits,
    deadline: ShutdownDeadline,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner, _ = await start_guarded(
        app,
        host=host,
        port=port,
        limits=limits,
        registry=app[REGISTRY_KEY],
        shutdown_timeout_s=shutdown_timeout_s,
    )
    try:
        await stop.wait()
    finally:
        deadline.start()
        await runner.cleanup()
