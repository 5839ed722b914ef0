"""The engine core: alerts in, flush plans out, with routing, inhibition, silences and
time intervals applied at notification time. Pure: time and state are passed in."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import EngineConfig
from alert_engine.core.decision import LogEntry
from alert_engine.core.flush import FlushPlan, MuteReason, plan_flush
from alert_engine.core.grouping import AggregationGroup, Dispatcher, GroupedAlert, next_on_grid
from alert_engine.core.inhibition import Inhibitor
from alert_engine.core.routing import Route
from alert_engine.core.silences import Silences
from opsmesh.durations import format_duration
from opsmesh.events.alerts import AlertStatus

_GROUP_KEY_CACHE = 65_536


@dataclass(frozen=True, slots=True)
class AlertView:
    """What the API says of an alert's state (Alertmanager's ``alertStatus``)."""

    state: str  # "active" | "suppressed"
    silenced_by: list[str] = field(default_factory=list)
    inhibited_by: list[str] = field(default_factory=list)
    muted_by: list[str] = field(default_factory=list)
    receivers: list[str] = field(default_factory=list)


def grouped(alert: StoredAlert) -> GroupedAlert:
    return GroupedAlert(
        fingerprint=alert.fingerprint,
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        status=AlertStatus.FIRING,
        generator_url=alert.generator_url,
        trace=alert.trace,
    )


@dataclass(frozen=True, slots=True)
class ReconfigureOutcome:
    kept: int  # groups still there, timers kept
    added: int  # groups the new route tree makes
    dropped: int  # groups whose route is gone


class Engine:
    def __init__(self, config: EngineConfig, alerts: ActiveAlerts, silences: Silences) -> None:
        self.alerts = alerts
        self.silences = silences
        self._configure(config)

    def _configure(self, config: EngineConfig) -> None:
        self.config = config
        self.dispatcher = Dispatcher(config.route)
        self._routes_by_id = {r.id: r for r in config.route.walk()}
        self._group_keys: dict[tuple[str, tuple[str | None, ...]], str] = {}
        # A route walk depends only on the values of the label names some matcher names
        # (a missing label matches as ""), so walks are remembered by those values.
        self._matched_names = sorted({m.name for r in config.route.walk() for m in r.matchers})
        self._walks: dict[tuple[str, ...], list[Route]] = {}

    def apply(self, alert: StoredAlert, now: float) -> list[AggregationGroup]:
        """An alert changed: (re)insert it into every group its route walk gives."""
        return self.dispatcher.insert(grouped(alert), now)

    def routes_for(self, alert: StoredAlert) -> list[tuple[Route, str]]:
        """(route, group key) for every group the alert belongs to."""
        labels = alert.labels
        return [(r, self.group_key(r, labels)) for r in self.routes(labels)]

    def routes(self, labels: Mapping[str, str]) -> list[Route]:
        """``config.route.match(labels)``, remembered (do not mutate the list)."""
        walk_key = tuple([labels.get(name, "") for name in self._matched_names])
        found = self._walks.get(walk_key)
        if found is None:
            if len(self._walks) >= _GROUP_KEY_CACHE:
                self._walks.clear()
            found = self._walks[walk_key] = self.config.route.match(labels)
        return found

    def group_key(self, route: Route, labels: Mapping[str, str]) -> str:
        """``route.group_key``, remembered per (route, grouping values): formatting it
        (quoted, escaped) costs more than the rest of routing an alert."""
        if route.groups_by_all:
            return route.group_key(labels)
        cache_key = (route.id, tuple([labels.get(name) for name in route.group_by]))
        key = self._group_keys.get(cache_key)
        if key is None:
            if len(self._group_keys) >= _GROUP_KEY_CACHE:
                self._group_keys.clear()
            key = self._group_keys[cache_key] = route.group_key(labels)
        return key

    def apply_routed(
        self, route_id: str, alert: GroupedAlert, now: float, key: str | None = None
    ) -> AggregationGroup | None:
        route = self._routes_by_id.get(route_id)
        if route is None:
            return None  # routed under a configuration that no longer has that route
        return self.dispatcher.insert_into(route, alert, now, key)

    def rebuild_owned(
        self, durable: Iterable[StoredAlert], now: float, owns: Callable[[str], bool]
    ) -> None:
        """(Re)build the groups of the keys ``owns`` accepts from ``durable``: the rows of
        the stored alerts, never ``self.alerts``, which also holds merges not yet durable
        (a POST answered here, its record on its way to the group's owner); a group built
        from one would notify a state a crash can lose, and the next owner, reading the
        rows, would decide again from another state (issue 18: two first notifications)."""
        self.dispatcher.drop(lambda group: not owns(group.key))
        for alert in durable:
            g = grouped(alert)
            for route, key in self.routes_for(alert):
                if owns(key):
                    self.dispatcher.insert_into(route, g, now, key)

    def reconfigure(
        self,
        config: EngineConfig,
        durable: Iterable[StoredAlert],
        now: float,
        owns: Callable[[str], bool],
    ) -> ReconfigureOutcome:
        """A reloaded configuration. The owned groups are rebuilt under the new route tree
        from ``durable`` (the stored alerts, as ``rebuild_owned``: never a merge that
        is not durable yet, and every replica builds the new keys it owns from the same
        rows); a group that is still there (same group key, same receiver: the
        key holds the route's matcher path) keeps its timers and whether it has flushed,
        so nothing is sent earlier than it would have been, and the notification log
        (keyed by group key and receiver) keeps a group that did not change from being
        notified again. Groups whose route is gone are dropped, as Alertmanager's reload
        drops them; new ones start with their ``group_wait``."""
        before = {(g.key, g.route.receiver): g for g in self.dispatcher.groups()}
        self._configure(config)
        for alert in durable:
            g = grouped(alert)
            for route, key in self.routes_for(alert):
                if owns(key):
                    self.dispatcher.insert_into(route, g, now, key)
        kept = 0
        for group in self.dispatcher.groups():
            old = before.pop((group.key, group.route.receiver), None)
            if old is None:
                continue
            kept += 1
            group.next_flush_at = old.next_flush_at
            group.has_flushed = old.has_flushed
            # Resolved alerts not yet told stay until the group's next flush tells them.
            for fingerprint, held in old.alerts.items():
                group.alerts.setdefault(fingerprint, held)
        return ReconfigureOutcome(
            kept=kept, added=len(self.dispatcher.groups()) - kept, dropped=len(before)
        )

    def drop_unowned(self, owns: Callable[[str], bool]) -> int:
        return self.dispatcher.drop(lambda group: owns(group.key))

    def inhibitor(self, now: float) -> Inhibitor:
        rules = self.config.inhibit_rules
        if not rules:
            # Every flush builds one; without rules, scanning every active alert is wasted work.
            return Inhibitor((), ())
        return Inhibitor(rules, ((a.fingerprint, a.labels) for a in self.alerts.firing(now)))

    def plan(self, now: float, entries: Mapping[tuple[str, str], LogEntry]) -> list[FlushPlan]:
        due = self.dispatcher.due(now)
        if not due:
            return []
        inhibitor = self.inhibitor(now)
        # Without silences or inhibition rules nothing can be muted: skip the per-alert scan.
        can_mute = bool(self.config.inhibit_rules) or self.silences.any_active(now)
        plans = []
        for group in due:
            muted = (
                {
                    a.fingerprint
                    for a in group.alerts.values()
                    if self.silences.muting(a.labels, now) or inhibitor.inhibited_by(a.labels)
                }
                if can_mute
                else set()
            )
            plans.append(
                plan_flush(
                    group,
                    entries.get((group.key, group.route.receiver)),
                    now,
                    muted,
                    self.time_mute(group.route, now),
                    send_resolved=self.config.sends_resolved(group.route.receiver),
                )
            )
        return plans

    def time_mute(self, route: Route, now: float) -> MuteReason | None:
        intervals = self.config.time_intervals
        if any(intervals[name].contains(now) for name in route.mute_time_intervals):
            return MuteReason.TIME_MUTED
        if route.active_time_intervals and not any(
            intervals[name].contains(now) for name in route.active_time_intervals
        ):
            return MuteReason.OUTSIDE_ACTIVE_TIME
        return None

    def done(self, plan: FlushPlan, now: float) -> None:
        self.dispatcher.flushed(plan.group, plan.covered, now)

    def postpone(self, plan: FlushPlan, now: float) -> None:
        """Not sent (rate-limited): keep every alert, try again next group_interval."""
        group = plan.group
        group.next_flush_at = next_on_grid(group.next_flush_at, group.route.group_interval_s, now)

    def in_groups(self) -> set[str]:
        return {fp for g in self.dispatcher.groups() for fp in g.alerts}

    def view(self, alert: StoredAlert, now: float, inhibitor: Inhibitor | None = None) -> AlertView:
        silenced = self.silences.muting(alert.labels, now)
        inhibition = (inhibitor or self.inhibitor(now)).inhibited_by(alert.labels)
        inhibited = [inhibition.source_fingerprint] if inhibition else []
        receivers = sorted({r.receiver for r in self.config.route.match(alert.labels)})
        state = "suppressed" if silenced or inhibited else "active"
        return AlertView(state, silenced, inhibited, [], receivers)

    def explain(self, labels: Mapping[str, str], now: float) -> dict[str, object]:
        """Which routes take a label set, where it goes, when, and what mutes it."""
        inhibition = self.inhibitor(now).inhibited_by(labels)
        routes = []
        for route in self.config.route.match(labels):
            mute = self.time_mute(route, now)
            routes.append(
                {
                    "route_id": route.id,
                    "route_key": route.key,
                    "matchers": [str(m) for m in route.matchers],
                    "receiver": route.receiver,
                    "group_by": list(route.group_by),
                    "group_key": route.group_key(labels),
                    "group_labels": route.group_labels(labels),
                    "continue": route.continue_matching,
                    "timers": {
                        "group_wait": format_duration(route.group_wait_s),
                        "group_interval": format_duration(route.group_interval_s),
                        "repeat_interval": format_duration(route.repeat_interval_s),
                    },
                    "mute_time_intervals": list(route.mute_time_intervals),
                    "active_time_intervals": list(route.active_time_intervals),
                    "time_muted_now": mute.value if mute else None,
                }
            )
        return {
            "labels": dict(labels),
            "routes": routes,
            "silenced_by": self.silences.muting(labels, now),
            "inhibited_by": (
                {
                    "rule": inhibition.rule.name or None,
                    "source_matchers": [str(m) for m in inhibition.rule.source_matchers],
                    "equal": list(inhibition.rule.equal),
                    "source_fingerprint": inhibition.source_fingerprint,
                }
                if inhibition
                else None
            ),
        }
