"""Routes and aggregation groups with Alertmanager's timers.

A group's first flush is ``group_wait`` after it is created (at once if, before that
flush, an alert joins that began more than ``group_wait`` ago); later flushes come every
``group_interval``. After a flush, the resolved alerts it covered leave the group, and an
empty group is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from alert_engine.core.routing import ALL_LABELS, Route
from opsmesh.events.alerts import AlertStatus

__all__ = ["ALL_LABELS", "AggregationGroup", "Dispatcher", "GroupedAlert", "Route"]


@dataclass(frozen=True, slots=True)
class GroupedAlert:
    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None
    status: AlertStatus
    generator_url: str = ""
    trace: str = ""  # the alert's traceparent (``StoredAlert.trace``)

    def status_at(self, now: float) -> AlertStatus:
        """Resolved when reported so or once ``ends_at`` has passed (Alertmanager: an alert
        whose endsAt elapsed without a refresh is resolved)."""
        if self.status is AlertStatus.RESOLVED or (
            self.ends_at is not None and self.ends_at <= now
        ):
            return AlertStatus.RESOLVED
        return AlertStatus.FIRING


@dataclass(slots=True)
class AggregationGroup:
    key: str
    route: Route
    labels: dict[str, str]
    next_flush_at: float
    alerts: dict[str, GroupedAlert] = field(default_factory=dict)
    has_flushed: bool = False

    def firing(self, now: float) -> list[GroupedAlert]:
        return [a for a in self.alerts.values() if a.status_at(now) is AlertStatus.FIRING]

    def resolved(self, now: float) -> list[GroupedAlert]:
        return [a for a in self.alerts.values() if a.status_at(now) is AlertStatus.RESOLVED]


def grid_instant(due: float, interval_s: float, now: float) -> float:
    """The grid instant a flush running at ``now`` serves: ``due``, or — when it runs
    more than an interval late — the latest instant of ``due``'s grid not after ``now``."""
    if interval_s <= 0 or now - due < interval_s:
        return min(due, now)
    return due + math.floor((now - due) / interval_s) * interval_s


def next_on_grid(due: float, interval_s: float, now: float) -> float:
    """The next flush after one that was due at ``due`` and ran at ``now``: one
    ``group_interval`` after it was *due*, as Alertmanager's timer (reset when it fires),
    so a flush that runs late (a slow tick, a busy event loop) never pushes the later
    ones back. A flush that ran more than an interval late skips to the first grid
    instant after ``now`` rather than firing a burst to catch up."""
    if interval_s <= 0:
        return now
    late = now - due
    if late < interval_s:
        return due + interval_s
    return due + (math.floor(late / interval_s) + 1) * interval_s


class Dispatcher:
    """Aggregation groups for every route an alert takes through the tree."""

    def __init__(self, route: Route) -> None:
        self._route = route
        self._groups: dict[tuple[str, str], AggregationGroup] = {}

    @property
    def route(self) -> Route:
        return self._route

    def groups(self) -> list[AggregationGroup]:
        return list(self._groups.values())

    def insert(self, alert: GroupedAlert, now: float) -> list[AggregationGroup]:
        return [self.insert_into(route, alert, now) for route in self._route.match(alert.labels)]

    def insert_into(
        self, route: Route, alert: GroupedAlert, now: float, key: str | None = None
    ) -> AggregationGroup:
        """Insert into the group of one route (the route walk was done by the sender, which
        may pass the group key it computed)."""
        if key is None:
            key = route.group_key(alert.labels)
        group = self._groups.get((route.id, key))
        if group is None:
            first_flush = now + route.group_wait_s
            group = AggregationGroup(key, route, route.group_labels(alert.labels), first_flush)
            self._groups[(route.id, key)] = group
        group.alerts[alert.fingerprint] = alert
        # As Alertmanager's aggrGroup.insert: any alert that has already waited out
        # group_wait brings a not-yet-flushed group's first flush forward to now.
        if not group.has_flushed and alert.starts_at + route.group_wait_s < now:
            group.next_flush_at = min(group.next_flush_at, now)
        return group

    def drop(self, keep: Callable[[AggregationGroup], bool]) -> int:
        """Forget the groups ``keep`` rejects (their partitions moved to another replica)."""
        gone = [k for k, g in self._groups.items() if not keep(g)]
        for k in gone:
            del self._groups[k]
        return len(gone)

    def next_due(self) -> float | None:
        """When the earliest group is due (None without groups): the flusher sleeps until
        then rather than to its next tick, so a group flushes as its ``group_wait`` or
        ``group_interval`` elapses, as Alertmanager's per-group timers do."""
        return min((g.next_flush_at for g in self._groups.values()), default=None)

    def due(self, now: float) -> list[AggregationGroup]:
        return sorted(
            (g for g in self._groups.values() if g.next_flush_at <= now),
            key=lambda g: g.next_flush_at,
        )

    def flushed(self, group: AggregationGroup, covered: Iterable[GroupedAlert], now: float) -> None:
        """After a successful flush: drop the resolved alerts it covered (unless they changed
        meanwhile), schedule the next flush, and forget an empty group. A group that was
        dropped or rebuilt while its flush was in flight (a rebalance) is left alone."""
        if self._groups.get((group.route.id, group.key)) is not group:
            return
        for alert in covered:
            if (
                alert.status_at(now) is AlertStatus.RESOLVED
                and group.alerts.get(alert.fingerprint) == alert
            ):
                del group.alerts[alert.fingerprint]
        group.next_flush_at = next_on_grid(group.next_flush_at, group.route.group_interval_s, now)
        group.has_flushed = True
        if not group.alerts:
            self._groups.pop((group.route.id, group.key), None)
