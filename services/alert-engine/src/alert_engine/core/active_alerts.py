"""Active alerts: every alert the engine knows, from rules and from the API, merged
Alertmanager's way, with an ingest limit per alert name."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from alert_engine.core.alerts import StoredAlert, accept

ALERTNAME = "alertname"


class IngestOutcome(enum.StrEnum):
    NEW = "new"
    UPDATED = "updated"
    LIMITED = "limited"  # a new alert over its name's limit: dropped and counted


@dataclass(frozen=True, slots=True)
class IngestLimits:
    per_alertname: int = 0  # distinct unresolved alerts per alertname; 0 = no limit


class ActiveAlerts:
    def __init__(self, limits: IngestLimits = IngestLimits()) -> None:
        self._limits = limits
        self._alerts: dict[str, StoredAlert] = {}
        self._active_by_name: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._alerts)

    def get(self, fingerprint: str) -> StoredAlert | None:
        return self._alerts.get(fingerprint)

    def all(self) -> list[StoredAlert]:
        return list(self._alerts.values())

    def firing(self, now: float) -> list[StoredAlert]:
        return [a for a in self._alerts.values() if not a.resolved(now)]

    def restore(self, alerts: Iterable[StoredAlert], now: float) -> None:
        """Take alerts read back from the stored alerts, except where the one held is newer:
        merged here, its row is still on its way (through Kafka) to its group's owner."""
        for alert in alerts:
            old = self._alerts.get(alert.fingerprint)
            if old is None or old.updated_at <= alert.updated_at:
                self._store(alert, now)

    def replace_all(
        self, alerts: Iterable[StoredAlert], now: float, *, forgotten_after_s: float = 0.0
    ) -> None:
        """Become ``alerts`` (a full re-read of the stored alerts), but keep what is held
        here and newer than its row or without a row yet (on its way to the owner, as in
        ``restore``) — unless it has been resolved for ``forgotten_after_s``: a row that
        old and gone was collected by a replica's maintenance."""
        held = self._alerts
        self._alerts = {}
        self._active_by_name = {}
        for alert in alerts:
            self._store(alert, now)
        for fingerprint, alert in held.items():
            row = self._alerts.get(fingerprint)
            if row is not None:
                if row.updated_at < alert.updated_at:
                    self._store(alert, now)
            elif alert.ends_at is None or alert.ends_at + forgotten_after_s > now:
                self._store(alert, now)

    def put(self, alert: StoredAlert, now: float) -> tuple[IngestOutcome, StoredAlert | None]:
        old = self._alerts.get(alert.fingerprint)
        name = alert.labels.get(ALERTNAME, "")
        limit = self._limits.per_alertname
        if old is None and limit and not alert.resolved(now):
            active = self._active_by_name.get(name, set())
            if len(active) >= limit:
                return IngestOutcome.LIMITED, None
        merged = accept(old, alert, now)
        self._store(merged, now)
        return (IngestOutcome.NEW if old is None else IngestOutcome.UPDATED), merged

    def _store(self, alert: StoredAlert, now: float) -> None:
        self._alerts[alert.fingerprint] = alert
        names = self._active_by_name.setdefault(alert.labels.get(ALERTNAME, ""), set())
        if alert.resolved(now):
            names.discard(alert.fingerprint)
        else:
            names.add(alert.fingerprint)

    def remove(self, fingerprint: str) -> None:
        alert = self._alerts.pop(fingerprint, None)
        if alert is not None:
            self._active_by_name.get(alert.labels.get(ALERTNAME, ""), set()).discard(fingerprint)

    def refresh_activity(self, now: float) -> None:
        """Alerts that timed out stop counting against their name's limit."""
        for names in self._active_by_name.values():
            for fingerprint in [f for f in names if self._alerts[f].resolved(now)]:
                names.discard(fingerprint)

    def collectable(self, now: float, retention_s: float, in_groups: set[str]) -> list[str]:
        """Resolved alerts no group still needs, resolved longer than the retention."""
        return [
            a.fingerprint
            for a in self._alerts.values()
            if a.ends_at is not None
            and a.ends_at + retention_s <= now
            and a.fingerprint not in in_groups
        ]
