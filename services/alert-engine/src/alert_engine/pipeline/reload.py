"""The alert-engine's part of configuration reload (``opsmesh.reload`` does the rest:
``POST /-/reload``, SIGHUP, the file watch, the metrics).

The file is checked in full by ``parse_config`` (the shared loader and the engine's own
checks) before anything changes; a valid one replaces the loaded one under
``EngineState.reconfigure``: groups still there keep their timers, so a reload never
notifies twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry

from alert_engine.core.amconfig import ConfigError, EngineConfig, parse_config
from alert_engine.pipeline.state import EngineState
from opsmesh.clock import Clock
from opsmesh.reload import (
    ConfigReloader,
    ReloadFailed,
    ReloadMetrics,
    ReloadUnavailable,
)


def parse(content: bytes, path: Path) -> EngineConfig:
    try:
        return parse_config(content.decode(), path.resolve().parent)
    except (ConfigError, UnicodeDecodeError) as exc:
        raise ReloadFailed(f"{path}: {exc}") from None


def config_reloader(
    path: Path,
    state: EngineState,
    *,
    loaded_hash: str | None,
    clock: Clock,
    registry: CollectorRegistry,
) -> ConfigReloader[EngineConfig]:
    """``loaded_hash``: the hash of the file's content in use (read when it was loaded)."""

    async def apply(config: EngineConfig) -> Mapping[str, object]:
        try:
            # The groups are rebuilt from the durable rows (``reconfigure``).
            outcome = await state.reconfigure(config)
        except psycopg.OperationalError as exc:  # PoolTimeout included
            raise ReloadUnavailable(f"PostgreSQL: {type(exc).__name__}") from None
        return {
            "groups_kept": outcome.kept,
            "groups_added": outcome.added,
            "groups_dropped": outcome.dropped,
        }

    return ConfigReloader(
        path,
        parse=parse,
        apply=apply,
        loaded_hash=loaded_hash,
        clock=clock,
        # Alertmanager's metric names, so its dashboards and alerts keep working.
        metrics=ReloadMetrics(registry, prefix="alertmanager", service="alert_engine"),
    )
