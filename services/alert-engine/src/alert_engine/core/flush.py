"""What one flush of a group sends: the decision, the alerts, and the idempotency key.

Muted alerts (silenced, inhibited) are left out before the decision, as Alertmanager's
mute stages run before its dedup stage; when every alert is muted nothing is sent and
the notification log is left as it was.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Set
from dataclasses import dataclass

from alert_engine.core.decision import LogEntry, needs_update
from alert_engine.core.grouping import AggregationGroup, GroupedAlert, grid_instant
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotifyReason


class MuteReason(enum.StrEnum):
    """Why a due flush sent nothing although the decision might have wanted to."""

    TIME_MUTED = "time_muted"  # inside one of the route's mute_time_intervals
    OUTSIDE_ACTIVE_TIME = "outside_active_time"  # outside all its active_time_intervals
    ALL_MUTED = "all_muted"  # every alert silenced or inhibited
    RATE_LIMITED = "rate_limited"  # the receiver's token bucket was empty


@dataclass(frozen=True, slots=True)
class FlushPlan:
    group: AggregationGroup
    receiver: str
    reason: NotifyReason | None  # None: nothing to send this time
    covered: tuple[GroupedAlert, ...]  # every alert of the group at the flush
    entry: LogEntry | None  # the log entry to record once the request is durable
    idempotency_key: str | None
    sent: tuple[GroupedAlert, ...] = ()  # the alerts the notification carries (not muted)
    at: float = 0.0
    mute: MuteReason | None = None


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


def plan_flush(
    group: AggregationGroup,
    last: LogEntry | None,
    now: float,
    muted: Set[str] = frozenset(),
    time_mute: MuteReason | None = None,
    *,
    send_resolved: bool = True,
) -> FlushPlan:
    """``send_resolved``: whether any integration of the receiver sends resolved
    notifications; without one, resolved alerts alone never cause a notification."""
    covered = tuple(group.alerts.values())
    receiver = group.route.receiver
    if time_mute is not None:
        return FlushPlan(group, receiver, None, covered, None, None, at=now, mute=time_mute)
    sent = tuple(a for a in covered if a.fingerprint not in muted) if muted else covered
    if covered and not sent:
        return FlushPlan(
            group, receiver, None, covered, None, None, at=now, mute=MuteReason.ALL_MUTED
        )
    # One pass (``status_at`` inlined): every due group is planned every group_interval.
    firing_fps: list[str] = []
    resolved_fps: list[str] = []
    resolved_status = AlertStatus.RESOLVED
    for a in sent:
        ends = a.ends_at
        if a.status is resolved_status or (ends is not None and ends <= now):
            resolved_fps.append(a.fingerprint)
        else:
            firing_fps.append(a.fingerprint)
    firing = frozenset(firing_fps)
    resolved = frozenset(resolved_fps)
    # The log keeps the instant the flush was due, not when it ran: repeats are then
    # decided on the grid (notified_at + repeat_interval is a grid instant), so a tick
    # that runs a little earlier after the due time than the previous one did cannot
    # push a repeat back by a whole group_interval.
    due = grid_instant(group.next_flush_at, group.route.group_interval_s, now)
    reason = needs_update(
        last,
        firing,
        resolved,
        repeat_interval_s=group.route.repeat_interval_s,
        now=due,
        send_resolved=send_resolved,
    )
    if reason is None:
        return FlushPlan(group, receiver, None, covered, None, None, sent, now)
    entry = LogEntry(
        firing=firing,
        resolved=resolved,
        notified_at=due,
        sequence=(last.sequence + 1) if last else 1,
    )
    key = idempotency_key(group.key, receiver, entry)
    return FlushPlan(group, receiver, reason, covered, entry, key, sent, now)
