"""Routes and aggregation groups with Alertmanager's timers.

A group's first flush is ``group_wait`` after it is created (at once if, before that
flush, an alert joins that began more than ``group_wait`` ago); later flushes come every
``group_interval``. After a flush, the resolved alerts it covered leave the group, and an
empty group is dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opsmesh.events.alerts import AlertStatus

ALL_LABELS = "..."


@dataclass(frozen=True, slots=True)
class Route:
    receiver: str
    group_by: tuple[str, ...] = ("alertname",)
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    key: str = "{}"

    def __post_init__(self) -> None:
        if self.group_interval_s <= 0:
            raise ValueError("group_interval must be positive")
        # Alertmanager rounds repeat_interval up to a multiple of group_interval.
        rounded = math.ceil(self.repeat_interval_s / self.group_interval_s) * self.group_interval_s
        object.__setattr__(self, "repeat_interval_s", rounded)

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if ALL_LABELS in self.group_by:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if k in labels}

    def group_key(self, labels: Mapping[str, str]) -> str:
        group = self.group_labels(labels)
        # Values are quoted with escapes (like Go's %q in Alertmanager's key), so a value
        # holding `",x="` cannot make two different label sets share one group.
        # Alertmanager prints the label set as {a="1", b="2"}; keys match it byte for byte.
        inner = ", ".join(f"{k}={json.dumps(group[k], ensure_ascii=False)}" for k in sorted(group))
        return f"{self.key}:{{{inner}}}"


@dataclass(frozen=True, slots=True)
class GroupedAlert:
    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None
    status: AlertStatus
    generator_url: str = ""


@dataclass(slots=True)
class AggregationGroup:
    key: str
    route: Route
    labels: dict[str, str]
    next_flush_at: float
    alerts: dict[str, GroupedAlert] = field(default_factory=dict)
    has_flushed: bool = False

    def firing(self) -> list[GroupedAlert]:
        return [a for a in self.alerts.values() if a.status is AlertStatus.FIRING]

    def resolved(self) -> list[GroupedAlert]:
        return [a for a in self.alerts.values() if a.status is AlertStatus.RESOLVED]


class Dispatcher:
    def __init__(self, route: Route) -> None:
        self._route = route
        self._groups: dict[str, AggregationGroup] = {}

    @property
    def route(self) -> Route:
        return self._route

    def groups(self) -> list[AggregationGroup]:
        return list(self._groups.values())

    def insert(self, alert: GroupedAlert, now: float) -> AggregationGroup:
        route = self._route
        key = route.group_key(alert.labels)
        group = self._groups.get(key)
        if group is None:
            first_flush = now + route.group_wait_s
            group = AggregationGroup(key, route, route.group_labels(alert.labels), first_flush)
            self._groups[key] = group
        group.alerts[alert.fingerprint] = alert
        # As Alertmanager's aggrGroup.insert: any alert that has already waited out
        # group_wait brings a not-yet-flushed group's first flush forward to now.
        if not group.has_flushed and alert.starts_at + route.group_wait_s < now:
            group.next_flush_at = min(group.next_flush_at, now)
        return group

    def due(self, now: float) -> list[AggregationGroup]:
        return sorted(
            (g for g in self._groups.values() if g.next_flush_at <= now),
            key=lambda g: g.next_flush_at,
        )

    def flushed(self, group: AggregationGroup, covered: Iterable[GroupedAlert], now: float) -> None:
        """After a successful flush: drop the resolved alerts it covered (unless they changed
        meanwhile), schedule the next flush, and forget an empty group."""
        for alert in covered:
            if (
                alert.status is AlertStatus.RESOLVED
                and group.alerts.get(alert.fingerprint) == alert
            ):
                del group.alerts[alert.fingerprint]
        group.next_flush_at = now + group.route.group_interval_s
        group.has_flushed = True
        if not group.alerts:
            self._groups.pop(group.key, None)
