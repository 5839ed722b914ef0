"""What ``GET /api/v2/alerts`` and ``GET /api/v2/alerts/groups`` list, computed from one
snapshot of the whole deployment's alerts and silences (read from PostgreSQL, which every
replica shares), never from the asking replica's aggregation groups: those hold only the
groups of the partitions it owns. Given the same snapshot, every replica answers alike.

Alertmanager's semantics (``api/v2/api.go`` ``alertFilter``, ``dispatch.Groups``):

- an alert whose end has passed is not listed;
- an alert's status is predicted at query time: ``silencedBy`` the active silences that
  match it, ``inhibitedBy`` the firing source that inhibits it (one, as the inhibitor
  stops at the first), ``mutedBy`` the time intervals muting its group; ``state`` is
  ``suppressed`` when any of those is non-empty, else ``active``;
- ``filter`` matchers, then ``active``/``silenced``/``inhibited`` choose alerts; the
  ``receiver`` regex chooses routes; a group with no alert left is not listed, nor a
  time-muted one when ``muted=false``;
- a listed alert's ``receivers`` in the groups answer are the receivers of the listed
  groups it is in (sorted); groups are ordered by label set, then receiver, and each
  group's alerts in Alertmanager's order (``core/alert_order.py``).

Pure: the snapshot, the engine (route tree, inhibit rules, time intervals) and the time
are passed in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from alert_engine.core.alert_order import alertmanager_order, label_set_before
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.engine import AlertView, Engine
from alert_engine.core.inhibition import Inhibitor
from alert_engine.core.matchers import Matcher, matches_all
from alert_engine.core.routing import Route
from alert_engine.core.silences import Silences


def _any_receiver(_: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The API's query parameters (defaults: list everything, as Alertmanager's)."""

    matchers: tuple[Matcher, ...] = ()
    receiver: Callable[[str], bool] = _any_receiver
    active: bool = True
    silenced: bool = True
    inhibited: bool = True
    muted: bool = True  # groups only: time-muted groups


@dataclass(frozen=True, slots=True)
class ListedAlert:
    alert: StoredAlert
    view: AlertView


@dataclass(frozen=True, slots=True)
class ListedGroup:
    labels: dict[str, str]
    route: Route
    alerts: list[ListedAlert] = field(default_factory=list)


def overlay(durable: Iterable[StoredAlert], held: Iterable[StoredAlert]) -> list[StoredAlert]:
    """The alerts of the durable rows, except where this replica holds a newer version or
    one without a row yet: a merge it answered a POST for, on its way through Kafka to the
    group's owner, which writes the row (so a POST is listed at once where it was taken,
    and everywhere once its row is written)."""
    current = {a.fingerprint: a for a in durable}
    for alert in held:
        row = current.get(alert.fingerprint)
        if row is None or row.updated_at < alert.updated_at:
            current[alert.fingerprint] = alert
    return list(current.values())


class Listing:
    """The alerts of one snapshot that have not ended, with their status predicted once."""

    def __init__(
        self, engine: Engine, alerts: Iterable[StoredAlert], silences: Silences, now: float
    ) -> None:
        self._engine = engine
        self._silences = silences
        self._now = now
        self._alerts = sorted(
            (a for a in alerts if not a.resolved(now)), key=lambda a: a.fingerprint
        )
        rules = engine.config.inhibit_rules
        # Inhibition sources are the firing alerts of the whole snapshot, whatever the filter.
        firing = ((a.fingerprint, a.labels) for a in self._alerts) if rules else ()
        self._inhibitor = Inhibitor(rules, firing)

    def _suppression(self, alert: StoredAlert) -> tuple[list[str], list[str]]:
        silenced = self._silences.muting(alert.labels, self._now)
        inhibition = self._inhibitor.inhibited_by(alert.labels)
        return silenced, [inhibition.source_fingerprint] if inhibition else []

    def _view(
        self,
        alert: StoredAlert,
        suppression: tuple[list[str], list[str]],
        receivers: list[str],
        muted_by: Sequence[str] = (),
    ) -> AlertView:
        silenced, inhibited = suppression
        state = "suppressed" if silenced or inhibited or muted_by else "active"
        return AlertView(state, list(silenced), list(inhibited), list(muted_by), receivers)

    def _chosen(self, query: ListQuery, suppression: tuple[list[str], list[str]]) -> bool:
        silenced, inhibited = suppression
        if silenced and not query.silenced:
            return False
        if inhibited and not query.inhibited:
            return False
        return query.active or bool(silenced or inhibited)

    def alerts(self, query: ListQuery) -> list[ListedAlert]:
        """``GET /api/v2/alerts``: by fingerprint; ``receivers`` every route's receiver."""
        out = []
        for alert in self._alerts:
            if not matches_all(query.matchers, alert.labels):
                continue
            receivers = sorted({r.receiver for r in self._engine.routes(alert.labels)})
            if not any(query.receiver(r) for r in receivers):
                continue
            suppression = self._suppression(alert)
            if self._chosen(query, suppression):
                out.append(ListedAlert(alert, self._view(alert, suppression, receivers)))
        return out

    def groups(self, query: ListQuery) -> list[ListedGroup]:
        """``GET /api/v2/alerts/groups``: the aggregation groups the route tree makes of the
        snapshot's alerts, wherever their owner runs."""
        members: dict[tuple[str, str], tuple[Route, dict[str, str], list[StoredAlert]]] = {}
        receivers: dict[str, list[str]] = {}
        suppressions: dict[str, tuple[list[str], list[str]]] = {}
        for alert in self._alerts:
            if not matches_all(query.matchers, alert.labels):
                continue
            routes = [
                (route, key)
                for route, key in self._engine.routes_for(alert)
                if query.receiver(route.receiver)
            ]
            if not routes:
                continue
            suppression = self._suppression(alert)
            if not self._chosen(query, suppression):
                continue
            suppressions[alert.fingerprint] = suppression
            for route, key in routes:
                receivers.setdefault(alert.fingerprint, []).append(route.receiver)
                found = members.get((route.id, key))
                if found is None:
                    found = members[(route.id, key)] = (route, route.group_labels(alert.labels), [])
                found[2].append(alert)
        out = []
        for route, labels, alerts in members.values():
            muted_by = self._muted_by(route)
            if muted_by and not query.muted:
                continue
            listed = [
                ListedAlert(
                    a,
                    self._view(
                        a, suppressions[a.fingerprint], sorted(receivers[a.fingerprint]), muted_by
                    ),
                )
                for a in alertmanager_order(alerts, lambda a: a.labels)
            ]
            out.append(ListedGroup(labels, route, listed))
        return sorted(out, key=functools.cmp_to_key(_group_order))

    def _muted_by(self, route: Route) -> list[str]:
        """The time intervals muting the route's groups now (Alertmanager's time mute and
        time active stages): the mute intervals that contain now, or, outside every one
        of its active intervals, all of those."""
        intervals = self._engine.config.time_intervals
        muting = [n for n in route.mute_time_intervals if intervals[n].contains(self._now)]
        if muting:
            return muting
        active = route.active_time_intervals
        if active and not any(intervals[n].contains(self._now) for n in active):
            return list(active)
        return []


def _group_order(a: ListedGroup, b: ListedGroup) -> int:
    """``dispatch.AlertGroups.Less``: by label set, then by receiver."""
    if a.labels == b.labels:
        ra, rb = a.route.receiver, b.route.receiver
        return (ra > rb) - (ra < rb)
    return -1 if label_set_before(a.labels, b.labels) else 1
