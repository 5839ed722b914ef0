"""What one flush of a group sends: the decision, the alerts, and the idempotency key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from alert_engine.core.decision import LogEntry, needs_update
from alert_engine.core.grouping import AggregationGroup, GroupedAlert
from opsmesh.events.notifications import NotifyReason


@dataclass(frozen=True, slots=True)
class FlushPlan:
    group: AggregationGroup
    receiver: str
    reason: NotifyReason | None  # None: nothing to send this time
    covered: tuple[GroupedAlert, ...]
    entry: LogEntry | None  # the log entry to record once the request is durable
    idempotency_key: str | None


def idempotency_key(group_key: str, receiver: str, entry: LogEntry) -> str:
    """Same flush → same key, across restarts and replicas, so the notifier sends it once."""
    material = "\x00".join(
        [
            group_key,
            receiver,
            str(entry.sequence),
            ",".join(sorted(entry.firing)),
            ",".join(sorted(entry.resolved)),
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:40]


def plan_flush(group: AggregationGroup, last: LogEntry | None, now: float) -> FlushPlan:
    covered = tuple(group.alerts.values())
    firing = frozenset(a.fingerprint for a in covered if a.status.value == "firing")
    resolved = frozenset(a.fingerprint for a in covered if a.status.value == "resolved")
    receiver = group.route.receiver
    reason = needs_update(
        last, firing, resolved, repeat_interval_s=group.route.repeat_interval_s, now=now
    )
    if reason is None:
        return FlushPlan(group, receiver, None, covered, None, None)
    entry = LogEntry(
        firing=firing,
        resolved=resolved,
        notified_at=now,
        sequence=(last.sequence + 1) if last else 1,
    )
    return FlushPlan(
        group, receiver, reason, covered, entry, idempotency_key(group.key, receiver, entry)
    )
