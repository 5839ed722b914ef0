"""What the engine lock guards: the in-memory state every part of the engine reads and
changes, only while ``EngineState`` holds its lock (``state/facade.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from alert_engine.core.alerts import StoredAlert
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator

RESOLVED_RETENTION_S = 15 * 60  # resolved alerts stay visible (and re-sendable) this long

LogKey = tuple[str, str]  # (group key, receiver): one notification-log entry


@dataclass(eq=False, slots=True)
class Held:
    engine: Engine  # the active alerts, groups, silences and configuration
    evaluator: Evaluator  # replaced whole when the rules change (``Admin``)
    entries: dict[LogKey, LogEntry] = field(default_factory=dict)  # the notification log
    owned: set[int] = field(default_factory=set)  # ``opsmesh.alert-groups`` partitions
    # Bumped on every local change, so an apply can tell its read went stale meanwhile.
    silences_version: int = 0
    rules_generation: int = 0
    synced_to: float = 0.0  # the newest ``updated_at`` read back from other replicas

    def replace_active(self, alerts: Sequence[StoredAlert], now: float) -> None:
        """A full re-read of the stored alerts (kept: what is held here and newer, or
        still on its way to its owner)."""
        self.engine.alerts.replace_all(alerts, now, forgotten_after_s=RESOLVED_RETENTION_S)
        self.synced(alerts)

    def synced(self, alerts: Sequence[StoredAlert]) -> None:
        # Rows reach the table after their owner consumes them, not in updated_at order:
        # each incremental re-read reaches back a margin before the newest row seen.
        if alerts:
            self.synced_to = max(self.synced_to, *(a.updated_at for a in alerts))
