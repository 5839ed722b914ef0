"""Configuration reload, as Alertmanager's: ``POST /-/reload``, SIGHUP, and (opsmesh's
addition, so every replica follows) a change of the file's content. One implementation
for every service that reloads a file (the alert-engine's configuration, the notifier's
receivers); each service supplies how its file is parsed and how the result is applied.

The file is read and checked in full (``parse``, then ``apply``, which may still refuse
it, e.g. a template that does not parse) before anything changes; a refused file is
refused with its reason (the caller's answer, the log, ``<prefix>_config_last_reload_
successful`` = 0) and the loaded configuration stays.

Replicas: each replica compares the content hash of its own file with the loaded one
every ``every_s`` (a ConfigMap or a deploy updates every copy), so a change reaches all
of them without a broadcast, and a replica that restarts reads the file it has. Only
the file itself is hashed: a change to a ``*_file`` secret or a template file alone is
picked up by ``POST /-/reload`` or SIGHUP, which re-read everything.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from opsmesh.clock import Clock
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, Periodic, PeriodicMetrics

log = get_logger(__name__)

T = TypeVar("T")


class ReloadTrigger(enum.StrEnum):
    API = "api"  # POST /-/reload
    SIGNAL = "sighup"
    FILE_CHANGED = "file_changed"


class ReloadFailed(Exception):
    """The file cannot be loaded; the configuration in use stays. The message names
    where and why, never a secret's value."""


class ReloadUnavailable(Exception):
    """The file is valid but cannot be applied now (a store it needs does not answer):
    transient. Nothing changes, the file is not marked refused, and the watch tries it
    again at its next check; the API answers 503."""


@dataclass(frozen=True, slots=True)
class ReloadResult:
    changed: bool  # False: the file's content is the loaded one (the watch only)
    summary: Mapping[str, object] = field(default_factory=dict)


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Reloads(Protocol):
    async def reload(self, trigger: ReloadTrigger, *, force: bool = True) -> ReloadResult: ...


class ReloadMetrics:
    """``<prefix>_config_last_reload_successful`` and ``..._success_timestamp_seconds``
    (Alertmanager's names with ``prefix="alertmanager"``, so its dashboards and alerts
    keep working), and ``<service>_config_reloads_total{trigger,outcome}``."""

    def __init__(self, registry: CollectorRegistry, *, prefix: str, service: str) -> None:
        self.successful = Gauge(
            f"{prefix}_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            registry=registry,
        )
        self.success_time = Gauge(
            f"{prefix}_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload",
            registry=registry,
        )
        self.reloads = Counter(
            f"{service}_config_reloads",
            "Configuration reload attempts by trigger and outcome",
            ["trigger", "outcome"],
            registry=registry,
        )


class ConfigReloader(Generic[T]):
    """``parse(content, path)`` runs in a thread and raises ``ReloadFailed`` (its message
    names the file);
    ``apply`` swaps the parsed configuration in (or raises ``ReloadFailed``, leaving the
    loaded one) and returns what to log about it."""

    def __init__(
        self,
        path: Path,
        *,
        parse: Callable[[bytes, Path], T],
        apply: Callable[[T], Awaitable[Mapping[str, object]]],
        loaded_hash: str | None,
        clock: Clock,
        metrics: ReloadMetrics,
    ) -> None:
        self._path = path
        self._parse = parse
        self._apply = apply
        self._hash = loaded_hash
        self._clock = clock
        self._metrics = metrics
        self._lock = asyncio.Lock()  # one reload at a time
        self._refused: str | None = None  # the content of the last refused file
        metrics.successful.set(1)
        metrics.success_time.set(clock.now())

    @property
    def path(self) -> Path:
        return self._path

    def _read(self) -> tuple[str, bytes]:
        try:
            data = self._path.read_bytes()
        except OSError as exc:
            raise ReloadFailed(f"{self._path}: cannot read: {exc.strerror}") from None
        return hashlib.sha256(data).hexdigest(), data

    async def reload(self, trigger: ReloadTrigger, *, force: bool = True) -> ReloadResult:
        """Re-read the file; ``force=False`` (the watch) skips an unchanged content."""
        async with self._lock:
            try:
                digest, data = await asyncio.to_thread(self._read)
                if not force and digest == self._hash:
                    return ReloadResult(changed=False)
                parsed = await asyncio.to_thread(self._parse, data, self._path)
                summary = await self._apply(parsed)
            except ReloadFailed as exc:
                self._metrics.successful.set(0)
                self._metrics.reloads.labels(trigger.value, "refused").inc()
                log.error("configuration reload refused", trigger=trigger.value, error=str(exc))
                raise
            except ReloadUnavailable as exc:
                self._metrics.successful.set(0)
                self._metrics.reloads.labels(trigger.value, "unavailable").inc()
                log.warning(
                    "configuration reload not applied, will retry",
                    trigger=trigger.value,
                    error=str(exc),
                )
                raise
            self._hash = digest
            self._refused = None
            self._metrics.successful.set(1)
            self._metrics.success_time.set(self._clock.now())
            self._metrics.reloads.labels(trigger.value, "applied").inc()
            log.info("configuration reloaded", trigger=trigger.value, **summary)
            return ReloadResult(changed=True, summary=summary)

    async def check(self) -> None:
        """The watch: reload when the file's content is not the loaded one. A refused
        file is tried again only when it changes again (not logged every check)."""
        digest = await asyncio.to_thread(file_hash, self._path)
        if digest is None or digest in (self._hash, self._refused):
            return
        try:
            await self.reload(ReloadTrigger.FILE_CHANGED, force=False)
        except ReloadFailed:
            self._refused = digest
        except ReloadUnavailable:
            return  # the next check tries the same content again

    def watcher(
        self, every_s: float, metrics: PeriodicMetrics
    ) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
        """The watch as a service worker: a ``check`` every ``every_s``."""
        return Periodic("config_watch", self.check, every_s, metrics, FirstRun.AFTER_INTERVAL).run


class SighupReload:
    """SIGHUP reloads, as Alertmanager's: installed while the service runs; a refused
    file is logged and counted by the reloader (there is no one to answer)."""

    def __init__(self, reloader: Reloads | None) -> None:
        self._reloader = reloader
        self._running: set[asyncio.Task[None]] = set()

    def __call__(self) -> None:
        if self._reloader is None:
            return
        task = asyncio.ensure_future(self._reload(self._reloader))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    @staticmethod
    async def _reload(reloader: Reloads) -> None:
        try:
            await reloader.reload(ReloadTrigger.SIGNAL)
        except (ReloadFailed, ReloadUnavailable):
            return  # logged and counted by the reloader

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGHUP, self)

    def remove(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_signal_handler(signal.SIGHUP)
