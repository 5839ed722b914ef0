"""The notify decision for one flush of a group to a receiver (Alertmanager ``needsUpdate``).

Returns a named reason, or None when nothing needs sending. The reason travels with the
notification and labels the metrics.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from opsmesh.events.notifications import NotifyReason


@dataclass(frozen=True, slots=True)
class LogEntry:
    """The last notification sent for (group key, receiver)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    notified_at: float
    sequence: int


def needs_update(
    entry: LogEntry | None,
    firing: Set[str],
    resolved: Set[str],
    *,
    repeat_interval_s: float,
    now: float,
    send_resolved: bool = True,
) -> NotifyReason | None:
    if entry is None:
        return NotifyReason.FIRST_NOTIFICATION if firing else None
    if not firing <= entry.firing:
        return NotifyReason.NEW_ALERTS if entry.firing else NotifyReason.FIRST_NOTIFICATION
    if not firing:
        # Sent even without send_resolved so the log forgets the firing set; if the
        # receiver never heard of any firing alert there is nothing to tell it.
        return NotifyReason.ALL_RESOLVED if entry.firing else None
    if send_resolved and not resolved <= entry.resolved:
        return NotifyReason.SOME_RESOLVED
    # Inclusive, unlike Alertmanager's strict Before(): flushes land exactly on multiples of
    # group_interval, and a strict test would push each repeat one group_interval late
    # (the "5m/5m gives 10-minute repeats" confusion, alertmanager#676).
    if entry.notified_at <= now - repeat_interval_s:
        return NotifyReason.REPEAT_INTERVAL_ELAPSED
    return None
