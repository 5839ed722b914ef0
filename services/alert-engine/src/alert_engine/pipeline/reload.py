"""Configuration reload, as Alertmanager's: ``POST /-/reload``, SIGHUP, and (opsmesh's
addition, so every replica follows) a change of the file's content.

The file is read and checked in full (``parse_config``: the shared loader and the
engine's own checks) before anything changes; an invalid file is refused with its reason
(the response, the log, ``alertmanager_config_last_reload_successful`` = 0) and the
loaded configuration stays. A valid one replaces it under ``EngineState.reconfigure``:
groups still there keep their timers, so a reload never notifies twice.

Replicas: each replica watches the content hash of its own file every
``ALERT_ENGINE_CONFIG_CHECK_S`` (a ConfigMap or a deploy updates every copy), so a
change reaches all of them without a broadcast, and a replica that restarts reads the
file it has.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from alert_engine.core.amconfig import ConfigError, EngineConfig, parse_config
from alert_engine.core.engine import ReconfigureOutcome
from alert_engine.pipeline.state import EngineState
from opsmesh.clock import Clock

log = structlog.get_logger(__name__)


class ReloadTrigger(enum.StrEnum):
    API = "api"  # POST /-/reload
    SIGNAL = "sighup"
    FILE_CHANGED = "file_changed"


class ReloadFailed(Exception):
    """The file cannot be loaded; the configuration in use stays."""


@dataclass(frozen=True, slots=True)
class ReloadResult:
    changed: bool  # False: the file's content is the loaded one
    outcome: ReconfigureOutcome | None = None


def _read(path: Path) -> tuple[str, EngineConfig]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReloadFailed(f"{path}: cannot read: {exc.strerror}") from None
    try:
        config = parse_config(data.decode(), path.resolve().parent)
    except (ConfigError, UnicodeDecodeError) as exc:
        raise ReloadFailed(f"{path}: {exc}") from None
    return hashlib.sha256(data).hexdigest(), config


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ConfigReloader:
    def __init__(
        self,
        path: Path,
        state: Callable[[], EngineState],
        *,
        loaded_hash: str | None,
        clock: Clock,
        registry: CollectorRegistry,
    ) -> None:
        self._path = path
        self._state = state
        self._hash = loaded_hash
        self._clock = clock
        self._lock = asyncio.Lock()  # one reload at a time
        self._refused: str | None = None  # the content of the last refused file
        # Alertmanager's metric names, so its dashboards and alerts keep working.
        self._successful = Gauge(
            "alertmanager_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            registry=registry,
        )
        self._success_time = Gauge(
            "alertmanager_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload",
            registry=registry,
        )
        self._reloads = Counter(
            "alert_engine_config_reloads",
            "Configuration reload attempts by trigger and outcome",
            ["trigger", "outcome"],
            registry=registry,
        )
        self._successful.set(1)
        self._success_time.set(clock.now())

    async def reload(self, trigger: ReloadTrigger, *, force: bool = True) -> ReloadResult:
        """Re-read the file; ``force=False`` (the watch) skips an unchanged content."""
        async with self._lock:
            try:
                digest, config = await asyncio.to_thread(_read, self._path)
            except ReloadFailed as exc:
                self._successful.set(0)
                self._reloads.labels(trigger.value, "refused").inc()
                log.error("configuration reload refused", trigger=trigger.value, error=str(exc))
                raise
            if not force and digest == self._hash:
                return ReloadResult(changed=False)
            outcome = await self._state().reconfigure(config)
            self._hash = digest
            self._refused = None
            self._successful.set(1)
            self._success_time.set(self._clock.now())
            self._reloads.labels(trigger.value, "applied").inc()
            log.info(
                "configuration reloaded",
                trigger=trigger.value,
                groups_kept=outcome.kept,
                groups_added=outcome.added,
                groups_dropped=outcome.dropped,
            )
            return ReloadResult(changed=True, outcome=outcome)

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

    async def watch(self, stop: asyncio.Event, every_s: float) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            except TimeoutError:
                await self.check()
