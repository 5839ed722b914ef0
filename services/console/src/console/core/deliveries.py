"""What the deliveries page and an alert's notifications show, from the notifier's and
the alert-engine's answers (pure: no I/O, no clock).

An alert's notifications come from the alert-engine's notification log (the last
notification of each of its groups to each receiver: why, and its idempotency key); the
notifier's delivery log, read by those keys, says how each integration fared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class IntegrationRow:
    receiver: str
    integration: str
    delivered: int
    failed: int
    retried: int
    retries: int
    breaker: str  # closed, open, half_open
    breaker_failures: int
    retry_in_s: float
    last_error: str | None
    last_failure_at: float | None
    configured: bool

    @property
    def health(self) -> str:
        """One word for the row's colour: failing (breaker not closed), degraded (some
        deliveries failed in the window), ok."""
        if self.breaker != "closed":
            return "failing"
        if self.failed:
            return "degraded"
        return "ok"


def integration_rows(summary: Mapping[str, Any]) -> list[IntegrationRow]:
    """The notifier's ``/api/v1/deliveries/summary``, worst first, then by name."""
    rows = []
    for r in summary.get("integrations", []):
        breaker = r.get("breaker") or {}
        rows.append(
            IntegrationRow(
                receiver=str(r["receiver"]),
                integration=str(r["integration"]),
                delivered=int(r.get("delivered", 0)),
                failed=int(r.get("failed", 0)),
                retried=int(r.get("retried", 0)),
                retries=int(r.get("retries", 0)),
                breaker=str(breaker.get("state", "closed")),
                breaker_failures=int(breaker.get("failures", 0)),
                retry_in_s=float(breaker.get("retry_in_s", 0.0)),
                last_error=r.get("last_error"),
                last_failure_at=r.get("last_failure_at"),
                configured=bool(r.get("configured", True)),
            )
        )
    order = {"failing": 0, "degraded": 1, "ok": 2}
    return sorted(rows, key=lambda r: (order[r.health], r.receiver, r.integration))


@dataclass(frozen=True, slots=True)
class AlertNotification:
    """One logged notification that carried the alert, and how its integrations fared."""

    receiver: str
    reason: str
    notified_at: float
    group_key: str
    as_status: str  # "firing" or "resolved": how this notification carried the alert
    idempotency_key: str
    deliveries: list[Mapping[str, Any]] = field(default_factory=list)
    letters: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """delivered (every integration), failed (any), or pending (no result yet)."""
        if not self.deliveries:
            return "pending"
        if any(d.get("result") != "delivered" for d in self.deliveries):
            return "failed"
        return "delivered"


def alert_notifications(
    fingerprint: str,
    entries: Sequence[Mapping[str, Any]],
    deliveries: Sequence[Mapping[str, Any]],
    letters: Sequence[Mapping[str, Any]] = (),
) -> list[AlertNotification]:
    """The alert-engine's log entries naming ``fingerprint``, newest first, each with the
    notifier's delivery rows (and dead letters) of its idempotency key."""
    by_key: dict[str, list[Mapping[str, Any]]] = {}
    for d in deliveries:
        by_key.setdefault(str(d.get("idempotency_key")), []).append(d)
    dead: dict[str, list[Mapping[str, Any]]] = {}
    for letter in letters:
        dead.setdefault(str(letter.get("idempotency_key")), []).append(letter)
    out = []
    for e in entries:
        key = str(e.get("idempotency_key", ""))
        out.append(
            AlertNotification(
                receiver=str(e["receiver"]),
                reason=str(e["reason"]),
                notified_at=float(e["notified_at"]),
                group_key=str(e["group_key"]),
                as_status="resolved" if fingerprint in e.get("resolved", ()) else "firing",
                idempotency_key=key,
                deliveries=sorted(by_key.get(key, []), key=lambda d: str(d.get("integration"))),
                letters=dead.get(key, []),
            )
        )
    out.sort(key=lambda n: -n.notified_at)
    return out


def keys_of(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The idempotency keys to ask the notifier about (an entry logged without one, by an
    older engine, has none)."""
    return sorted({str(e["idempotency_key"]) for e in entries if e.get("idempotency_key")})
