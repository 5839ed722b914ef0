"""The alerts page: the routing tree's groups, filtered by matchers, one page of them,
and the rule alerts still pending (their ``for`` not elapsed, so in no group yet).

Filters are Alertmanager's matchers (``team="db", severity=~"crit.*"``), parsed by the
alert-engine's own parser so a filter means here what it means in the API and amtool. A
group is shown when one of its alerts matches, with only the matching alerts.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from alert_engine.core.matchers import Matcher, MatcherError, matches_all, parse_matchers
from console.core.shapes import Alert, AlertGroup, PendingAlert
from console.core.timefmt import age

# Worst first; anything else sorts after these.
SEVERITY_ORDER = ("critical", "page", "error", "warning", "info")


class StateFilter(enum.StrEnum):
    ALL = "all"
    ACTIVE = "active"
    SUPPRESSED = "suppressed"
    PENDING = "pending"  # rule alerts whose ``for`` has not elapsed: not routed yet


class FilterError(ValueError):
    """A filter the matcher grammar refuses; the page shows it next to the input."""


def parse_filter(text: str) -> tuple[Matcher, ...]:
    """``team="db", severity=~"crit.*"``, braces optional; empty means every alert."""
    stripped = text.strip()
    if not stripped:
        return ()
    try:
        return tuple(parse_matchers(stripped))
    except MatcherError as exc:
        raise FilterError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert: Alert
    age: str

    @property
    def state(self) -> str:
        return self.alert.status.state


@dataclass(frozen=True, slots=True)
class GroupView:
    receiver: str
    labels: tuple[tuple[str, str], ...]
    rows: tuple[AlertRow, ...]
    matched: int  # alerts of the group the filter kept; rows holds at most a page of them
    active: int
    suppressed: int
    worst_severity: str

    @property
    def hidden(self) -> int:
        return self.matched - len(self.rows)


@dataclass(frozen=True, slots=True)
class PendingRow:
    alert: PendingAlert
    since: str  # how long the condition has held, or "" when the engine did not say

    @property
    def name(self) -> str:
        return self.alert.labels.get("alertname", self.alert.rule)


@dataclass(frozen=True, slots=True)
class AlertsPage:
    groups: tuple[GroupView, ...]
    matched_groups: int
    matched_alerts: int
    total_alerts: int
    page: int
    pages: int
    pending: tuple[PendingRow, ...] = ()  # at most a page of them, longest pending first
    matched_pending: int = 0
    total_pending: int = 0

    @property
    def hidden_pending(self) -> int:
        return self.matched_pending - len(self.pending)


def _worst(severities: set[str]) -> str:
    for severity in SEVERITY_ORDER:
        if severity in severities:
            return severity
    return min(severities) if severities else ""


def _wanted(alert: Alert, matchers: Sequence[Matcher], state: StateFilter) -> bool:
    if state is StateFilter.PENDING:
        return False
    if state is StateFilter.ACTIVE and alert.status.state != "active":
        return False
    if state is StateFilter.SUPPRESSED and alert.status.state != "suppressed":
        return False
    return not matchers or matches_all(matchers, alert.labels)


def _pending_rows(
    pending: Sequence[PendingAlert],
    matchers: Sequence[Matcher],
    state: StateFilter,
    now: float,
    limit: int,
) -> tuple[tuple[PendingRow, ...], int]:
    """The pending alerts the filter keeps, longest pending first, at most ``limit``."""
    if state not in (StateFilter.ALL, StateFilter.PENDING):
        return (), 0
    kept = [p for p in pending if not matchers or matches_all(matchers, p.labels)]
    kept.sort(key=lambda p: (p.active_at is None, p.active_at or 0.0, p.fingerprint))
    rows = tuple(
        PendingRow(p, age(now - p.active_at) if p.active_at is not None else "")
        for p in kept[:limit]
    )
    return rows, len(kept)


def build_page(
    groups: Sequence[AlertGroup],
    matchers: Sequence[Matcher],
    *,
    now: float,
    state: StateFilter = StateFilter.ALL,
    page: int = 1,
    groups_per_page: int = 50,
    alerts_per_group: int = 25,
    pending: Sequence[PendingAlert] = (),
) -> AlertsPage:
    """One page of groups, in the engine's order (the routing tree's), filtered, with the
    pending alerts the same filter keeps (as many as a group shows alerts)."""
    kept: list[tuple[AlertGroup, list[Alert]]] = []
    total = matched = 0
    for group in groups:
        total += len(group.alerts)
        alerts = [a for a in group.alerts if _wanted(a, matchers, state)]
        if alerts:
            kept.append((group, alerts))
            matched += len(alerts)
    pages = max(1, -(-len(kept) // groups_per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * groups_per_page
    views = []
    for group, alerts in kept[start : start + groups_per_page]:
        active = sum(1 for a in alerts if a.status.state == "active")
        views.append(
            GroupView(
                receiver=group.receiver.name,
                labels=tuple(sorted(group.labels.items())),
                rows=tuple(
                    AlertRow(a, age(now - a.starts_at.timestamp()))
                    for a in alerts[:alerts_per_group]
                ),
                matched=len(alerts),
                active=active,
                suppressed=len(alerts) - active,
                worst_severity=_worst({a.severity for a in alerts if a.severity}),
            )
        )
    pending_rows, matched_pending = _pending_rows(pending, matchers, state, now, alerts_per_group)
    return AlertsPage(
        groups=tuple(views),
        matched_groups=len(kept),
        matched_alerts=matched,
        total_alerts=total,
        page=page,
        pages=pages,
        pending=pending_rows,
        matched_pending=matched_pending,
        total_pending=len(pending),
    )


def find_alert(groups: Sequence[AlertGroup], fingerprint: str) -> Alert | None:
    for group in groups:
        for alert in group.alerts:
            if alert.fingerprint == fingerprint:
                return alert
    return None


def receivers_of(groups: Sequence[AlertGroup], fingerprint: str) -> list[str]:
    """Every receiver whose group holds the alert (a route with ``continue`` gives more)."""
    return sorted(
        {g.receiver.name for g in groups if any(a.fingerprint == fingerprint for a in g.alerts)}
    )


@dataclass(frozen=True, slots=True)
class ReceiverLoad:
    receiver: str
    groups: int
    active: int
    suppressed: int


def receiver_load(groups: Sequence[AlertGroup]) -> list[ReceiverLoad]:
    """Per receiver: its groups and their alerts, active and suppressed, by name."""
    counts: dict[str, list[int]] = {}
    for group in groups:
        found = counts.setdefault(group.receiver.name, [0, 0, 0])
        found[0] += 1
        active = sum(1 for a in group.alerts if a.status.state == "active")
        found[1] += active
        found[2] += len(group.alerts) - active
    return [ReceiverLoad(name, *found) for name, found in sorted(counts.items())]
