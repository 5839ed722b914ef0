"""The engine: alerts in, flush plans out, with routes, silences, inhibition and time
intervals applied at flush time. Simulated time only."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert, from_posted
from alert_engine.core.amconfig import parse_config
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import Engine
from alert_engine.core.flush import FlushPlan, MuteReason
from alert_engine.core.grouping import GroupedAlert
from alert_engine.core.matchers import parse_matchers
from alert_engine.core.silences import Silence, Silences
from alert_engine.testing import PostedAlert
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotifyReason

CONFIG = textwrap.dedent(
    """\
    global: {resolve_timeout: 5m}
    route:
      receiver: default
      group_by: [alertname]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 1h
      routes:
        - receiver: pager
          matchers: ['severity="page"']
          group_by: [alertname, cluster]
          group_wait: 10s
        - receiver: night
          matchers: ['team="night"']
          mute_time_intervals: [nights]
        - receiver: office
          matchers: ['team="office"']
          active_time_intervals: [office-hours]
    time_intervals:
      - name: nights
        time_intervals: [{times: [{start_time: '00:00', end_time: '06:00'}]}]
      - name: office-hours
        time_intervals: [{times: [{start_time: '09:00', end_time: '17:00'}]}]
    inhibit_rules:
      - name: page-mutes-warning
        source_matchers: ['severity="page"']
        target_matchers: ['severity="warning"']
        equal: [cluster]
    receivers: [{name: default}, {name: pager}, {name: night}, {name: office}]
    """
)

NOON = datetime(2024, 1, 2, 12, 0, tzinfo=UTC).timestamp()
THREE_AM = datetime(2024, 1, 2, 3, 0, tzinfo=UTC).timestamp()
EIGHT_PM = datetime(2024, 1, 2, 20, 0, tzinfo=UTC).timestamp()
LATER = NOON + 6 * 3600  # an explicit endsAt well past every flush of a test


class World:
    """An engine with a simulated clock, an nflog dict, and helpers to post and flush."""

    def __init__(self, now: float = NOON) -> None:
        self.config = parse_config(CONFIG)
        self.engine = Engine(self.config, ActiveAlerts(), Silences())
        self.now = now
        self.entries: dict[tuple[str, str], LogEntry] = {}

    def post(
        self, *, ends: float | None = None, starts: float | None = None, **labels: str
    ) -> StoredAlert:
        alert = from_posted(
            PostedAlert(
                labels=labels,
                annotations={},
                starts_at=None if starts is None else datetime.fromtimestamp(starts, UTC),
                ends_at=None if ends is None else datetime.fromtimestamp(ends, UTC),
                generator_url="",
            ),
            self.now,
            self.config.resolve_timeout_s,
        )
        _, stored = self.engine.alerts.put(alert, self.now)
        assert stored is not None
        self.engine.apply(stored, self.now)
        return stored

    def silence(self, matchers: str) -> Silence:
        s = Silence("", tuple(parse_matchers(matchers)), self.now, self.now + 3600, "me", "x", 0)
        created, _ = self.engine.silences.set(s, self.now)
        return created

    def plan(self) -> list[FlushPlan]:
        return self.engine.plan(self.now, self.entries)

    def flush(self) -> list[FlushPlan]:
        """Plan, 'send', record the log entries and finish every due group."""
        plans = self.plan()
        for plan in plans:
            if plan.entry is not None:
                self.entries[(plan.group.key, plan.receiver)] = plan.entry
            self.engine.done(plan, self.now)
        return plans

    def by_receiver(self, plans: list[FlushPlan]) -> dict[str, FlushPlan]:
        out = {p.receiver: p for p in plans}
        assert len(out) == len(plans)
        return out


def fps(alerts: Iterable[GroupedAlert]) -> set[str]:
    return {a.fingerprint for a in alerts}


def test_alerts_go_to_the_right_groups_and_receivers() -> None:
    w = World()
    page = w.post(alertname="Down", severity="page", cluster="c1")
    other = w.post(alertname="Down", severity="page", cluster="c2")
    plain = w.post(alertname="Disk", host="h")
    groups = {(g.route.receiver, g.key): set(g.alerts) for g in w.engine.dispatcher.groups()}
    assert groups == {
        ("pager", '{}/{severity="page"}:{alertname="Down", cluster="c1"}'): {page.fingerprint},
        ("pager", '{}/{severity="page"}:{alertname="Down", cluster="c2"}'): {other.fingerprint},
        ("default", '{}:{alertname="Disk"}'): {plain.fingerprint},
    }
    assert w.engine.in_groups() == {page.fingerprint, other.fingerprint, plain.fingerprint}


def test_due_groups_plan_first_notifications_after_group_wait() -> None:
    w = World()
    page = w.post(alertname="Down", severity="page", cluster="c1")
    plain = w.post(alertname="Disk", host="h")
    w.now = NOON + 9
    assert w.plan() == []
    w.now = NOON + 10
    (pager,) = w.flush()
    assert (pager.receiver, pager.reason) == ("pager", NotifyReason.FIRST_NOTIFICATION)
    assert fps(pager.sent) == {page.fingerprint}
    w.now = NOON + 30
    (default,) = w.flush()
    assert (default.receiver, default.reason) == ("default", NotifyReason.FIRST_NOTIFICATION)
    assert fps(default.sent) == {plain.fingerprint}
    assert default.entry is not None
    assert default.entry.firing == {plain.fingerprint}
    assert default.idempotency_key


def test_reasons_follow_the_groups_life() -> None:
    w = World()
    a = w.post(alertname="Disk", host="a", ends=LATER)
    w.now = NOON + 30
    assert w.flush()[0].reason is NotifyReason.FIRST_NOTIFICATION
    # next flush one group_interval later: nothing new, nothing due
    w.now = NOON + 330
    (quiet,) = w.flush()
    assert quiet.reason is None
    assert quiet.entry is None
    # a new alert joins the group
    w.post(alertname="Disk", host="b", ends=LATER)
    w.now = NOON + 630
    (added,) = w.flush()
    assert added.reason is NotifyReason.NEW_ALERTS
    assert added.entry is not None
    assert added.entry.sequence == 2
    # the repeat interval (1h) elapses
    w.now = NOON + 630 + 3600
    (repeat,) = w.flush()
    assert repeat.reason is NotifyReason.REPEAT_INTERVAL_ELAPSED
    assert fps(repeat.sent) >= {a.fingerprint}


def test_a_silenced_alert_is_left_out() -> None:
    w = World()
    a = w.post(alertname="Disk", host="a")
    b = w.post(alertname="Disk", host="b")
    s = w.silence('{host="b"}')
    w.now = NOON + 30
    (plan,) = w.plan()
    assert plan.reason is NotifyReason.FIRST_NOTIFICATION
    assert fps(plan.covered) == {a.fingerprint, b.fingerprint}
    assert fps(plan.sent) == {a.fingerprint}
    assert plan.entry is not None
    assert plan.entry.firing == {a.fingerprint}
    assert plan.mute is None
    view = w.engine.view(b, w.now)
    assert (view.state, view.silenced_by, view.inhibited_by) == ("suppressed", [s.id], [])
    assert w.engine.view(a, w.now).state == "active"


def test_an_inhibited_alert_is_left_out() -> None:
    w = World()
    source = w.post(alertname="Down", severity="page", cluster="c1")
    target = w.post(alertname="Lag", severity="warning", cluster="c1")
    other = w.post(alertname="Lag", severity="warning", cluster="c2")
    w.now = NOON + 30
    plans = w.by_receiver(w.plan())
    lag = plans["default"]
    assert fps(lag.covered) == {target.fingerprint, other.fingerprint}
    assert fps(lag.sent) == {other.fingerprint}
    assert lag.entry is not None
    assert lag.entry.firing == {other.fingerprint}
    view = w.engine.view(target, w.now)
    assert (view.state, view.inhibited_by) == ("suppressed", [source.fingerprint])


def test_all_muted_sends_nothing_and_records_nothing() -> None:
    w = World()
    w.post(alertname="Down", severity="page", cluster="c1")
    w.post(alertname="Lag", severity="warning", cluster="c1")  # inhibited
    w.post(alertname="Disk", host="a")
    w.silence('{alertname="Disk"}')  # silenced
    w.now = NOON + 30
    plans = w.plan()
    muted = [p for p in plans if p.receiver == "default"]
    assert len(muted) == 2
    for plan in muted:
        assert plan.mute is MuteReason.ALL_MUTED
        assert plan.reason is None
        assert plan.entry is None
        assert plan.idempotency_key is None
        assert plan.sent == ()
        assert len(plan.covered) == 1


def test_a_time_muted_route_sends_nothing() -> None:
    w = World(now=THREE_AM)
    w.post(alertname="Backup", team="night")
    w.now = THREE_AM + 30
    (plan,) = w.plan()
    assert (plan.receiver, plan.mute, plan.reason, plan.entry) == (
        "night",
        MuteReason.TIME_MUTED,
        None,
        None,
    )
    # the same at noon is sent
    day = World()
    day.post(alertname="Backup", team="night")
    day.now = NOON + 30
    (sent,) = day.plan()
    assert (sent.mute, sent.reason) == (None, NotifyReason.FIRST_NOTIFICATION)


def test_outside_active_time_sends_nothing() -> None:
    w = World(now=EIGHT_PM)
    w.post(alertname="Report", team="office")
    w.now = EIGHT_PM + 30
    (plan,) = w.plan()
    assert (plan.receiver, plan.mute, plan.reason) == (
        "office",
        MuteReason.OUTSIDE_ACTIVE_TIME,
        None,
    )
    day = World()
    day.post(alertname="Report", team="office")
    day.now = NOON + 30
    assert day.plan()[0].reason is NotifyReason.FIRST_NOTIFICATION


def test_done_removes_resolved_alerts_and_empty_groups() -> None:
    w = World()
    a = w.post(alertname="Disk", host="a", ends=LATER)
    b = w.post(alertname="Disk", host="b", ends=LATER)
    w.now = NOON + 30
    w.flush()
    w.now = NOON + 60
    w.post(alertname="Disk", host="b", starts=NOON, ends=NOON + 60)  # b resolves
    stored = w.engine.alerts.get(b.fingerprint)
    assert stored is not None
    assert stored.resolved(w.now)
    w.now = NOON + 330
    (plan,) = w.flush()
    assert plan.reason is NotifyReason.SOME_RESOLVED
    (group,) = w.engine.dispatcher.groups()
    assert set(group.alerts) == {a.fingerprint}
    assert b.fingerprint not in w.engine.in_groups()
    w.now = NOON + 400
    w.post(alertname="Disk", host="a", starts=NOON, ends=NOON + 400)
    w.now = NOON + 630
    (last,) = w.flush()
    assert last.reason is NotifyReason.ALL_RESOLVED
    assert w.engine.dispatcher.groups() == []


def test_postpone_keeps_the_alerts_and_waits_a_group_interval() -> None:
    w = World()
    a = w.post(alertname="Disk", host="a", ends=NOON + 10)  # resolved before the flush
    b = w.post(alertname="Disk", host="b", ends=LATER)
    w.now = NOON + 30
    (plan,) = w.plan()
    assert plan.reason is NotifyReason.FIRST_NOTIFICATION
    w.engine.postpone(plan, w.now)
    (group,) = w.engine.dispatcher.groups()
    assert set(group.alerts) == {a.fingerprint, b.fingerprint}
    assert group.next_flush_at == w.now + 300
    w.now = NOON + 329
    assert w.plan() == []
    w.now = NOON + 330
    (again,) = w.plan()
    assert again.reason is NotifyReason.FIRST_NOTIFICATION


def test_a_timed_out_alert_counts_as_resolved_at_flush() -> None:
    w = World()
    a = w.post(alertname="Disk", host="a")  # no endsAt: resolves at NOON + 5m
    assert a.timeout
    assert a.ends_at == NOON + 300
    w.now = NOON + 30
    w.flush()
    w.now = NOON + 330  # the timeout passed without a refresh
    (plan,) = w.flush()
    assert plan.reason is NotifyReason.ALL_RESOLVED
    assert plan.entry is not None
    assert plan.entry.resolved == {a.fingerprint}
    assert plan.entry.firing == frozenset()
    assert w.engine.dispatcher.groups() == []


def test_a_resolved_inhibiting_source_stops_inhibiting() -> None:
    w = World()
    w.post(alertname="Down", severity="page", cluster="c1", ends=NOON + 20)
    target = w.post(alertname="Lag", severity="warning", cluster="c1")
    w.now = NOON + 30
    lag = w.by_receiver(w.plan())["default"]
    assert fps(lag.sent) == {target.fingerprint}


def routes_of(explained: dict[str, object]) -> list[dict[str, Any]]:
    routes = explained["routes"]
    assert isinstance(routes, list)
    return routes


def test_explain() -> None:
    w = World()
    w.post(alertname="Down", severity="page", cluster="c1")
    s = w.silence('{alertname="Lag"}')
    labels = {"alertname": "Lag", "severity": "warning", "cluster": "c1"}
    out = w.engine.explain(labels, w.now)
    assert out["labels"] == labels
    assert out["silenced_by"] == [s.id]
    assert out["inhibited_by"] is not None
    inhibited = out["inhibited_by"]
    assert isinstance(inhibited, dict)
    assert inhibited["rule"] == "page-mutes-warning"
    assert inhibited["equal"] == ["cluster"]
    assert inhibited["source_matchers"] == ['severity="page"']
    (route,) = routes_of(out)
    assert route["route_id"] == "0"
    assert route["receiver"] == "default"
    assert route["group_key"] == '{}:{alertname="Lag"}'
    assert route["group_labels"] == {"alertname": "Lag"}
    assert route["timers"] == {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "1h"}
    assert route["time_muted_now"] is None


def test_explain_a_paged_alert_at_night() -> None:
    w = World(now=THREE_AM)
    out = w.engine.explain({"alertname": "Down", "severity": "page", "team": "night"}, w.now)
    (route,) = routes_of(out)
    # the first matching route (pager) stops the walk before "night"
    assert (route["route_id"], route["receiver"]) == ("0.0", "pager")
    assert route["matchers"] == ['severity="page"']
    assert route["timers"]["group_wait"] == "10s"
    assert out["silenced_by"] == []
    assert out["inhibited_by"] is None
    night = w.engine.explain({"alertname": "Backup", "team": "night"}, w.now)
    (route,) = routes_of(night)
    assert route["receiver"] == "night"
    assert route["mute_time_intervals"] == ["nights"]
    assert route["time_muted_now"] == "time_muted"


def test_view_lists_receivers() -> None:
    w = World()
    a = w.post(alertname="Down", severity="page", cluster="c1")
    view = w.engine.view(a, w.now)
    assert (view.state, view.silenced_by, view.inhibited_by, view.receivers) == (
        "active",
        [],
        [],
        ["pager"],
    )


def test_a_new_owner_rebuilds_its_groups_from_the_durable_rows() -> None:
    w = World()
    a = w.post(alertname="Disk", host="a")
    owner = World()
    owner.engine.rebuild_owned(w.engine.alerts.all(), NOON + 5, lambda _key: True)
    (group,) = owner.engine.dispatcher.groups()
    assert set(group.alerts) == {a.fingerprint}
    assert group.next_flush_at == NOON + 35


@pytest.mark.parametrize("when", [NOON, THREE_AM])
def test_default_route_is_never_time_muted(when: float) -> None:
    w = World(now=when)
    assert w.engine.time_mute(w.config.route, when) is None


def test_remembered_route_walks_and_group_keys_equal_fresh_ones() -> None:
    config = parse_config(
        CONFIG.replace(
            "        - receiver: night\n",
            "        - receiver: pager\n"
            "          matchers: ['team=~\"d.*\"']\n"
            "          continue: true\n"
            "          group_by: ['...']\n"
            "        - receiver: night\n",
        )
    )
    engine = Engine(config, ActiveAlerts(), Silences())
    label_sets = [
        {"alertname": a, "severity": s, "team": t, "cluster": c}
        for a in ("A", "B")
        for s in ("page", "warning", "")
        for t in ("db", "night", "office", "")
        for c in ("eu", "us")
    ]
    for _ in range(2):  # the second pass is answered from the caches
        for labels in label_sets:
            present = {k: v for k, v in labels.items() if v}
            alert = StoredAlert("fp", present, {}, NOON, None, NOON)
            expected = [(r, r.group_key(present)) for r in config.route.match(present)]
            assert engine.routes_for(alert) == expected


def test_a_reload_keeps_groups_and_timers_and_never_notifies_twice() -> None:
    w = World()
    page = w.post(alertname="Down", severity="page", cluster="c1", ends=LATER)
    plain = w.post(alertname="Disk", host="h", ends=LATER)
    w.now = NOON + 30
    assert {p.receiver for p in w.flush()} == {"pager", "default"}
    timers = {(g.key, g.route.receiver): g.next_flush_at for g in w.engine.dispatcher.groups()}
    # A new route in front for another team, and a changed inhibition rule: the two
    # groups above are still there, under the same keys.
    changed = CONFIG.replace(
        "  routes:\n",
        "  routes:\n    - receiver: db\n      matchers: ['team=\"db\"']\n",
    ).replace("{name: office}]", "{name: office}, {name: db}]")
    w.now = NOON + 100
    outcome = w.engine.reconfigure(
        parse_config(changed), w.engine.alerts.all(), w.now, lambda _key: True
    )
    assert (outcome.kept, outcome.added, outcome.dropped) == (2, 0, 0)
    after = {(g.key, g.route.receiver): g for g in w.engine.dispatcher.groups()}
    assert {k: g.next_flush_at for k, g in after.items()} == timers
    assert all(g.has_flushed for g in after.values())
    # Every flush instant after the reload: nothing is sent again for unchanged groups
    # until repeat_interval (1h) is up, and then once per group, as without the reload.
    for step in range(1, 12):
        w.now = NOON + 30 + step * 300
        assert [p.reason for p in w.flush() if p.reason is not None] == []
    w.now = NOON + 30 + 3600
    repeats = sorted(p.receiver for p in w.flush() if p.reason is not None)
    assert repeats == ["default", "pager"]
    # A new alert for the new route gets its own group, with its group_wait.
    db = w.post(alertname="Slow", team="db")
    (db_plan,) = [p for p in w.engine.plan(w.now + 30, w.entries) if p.receiver == "db"]
    assert fps(db_plan.sent) == {db.fingerprint}
    assert {page.fingerprint, plain.fingerprint} <= w.engine.in_groups()


def test_a_reload_drops_the_groups_of_a_route_that_is_gone() -> None:
    w = World()
    w.post(alertname="Down", severity="page", cluster="c1")
    without_pager = CONFIG.replace(
        "    - receiver: pager\n"
        "      matchers: ['severity=\"page\"']\n"
        "      group_by: [alertname, cluster]\n"
        "      group_wait: 10s\n",
        "",
    )
    outcome = w.engine.reconfigure(
        parse_config(without_pager), w.engine.alerts.all(), w.now, lambda _key: True
    )
    assert (outcome.kept, outcome.added, outcome.dropped) == (0, 1, 1)
    (group,) = w.engine.dispatcher.groups()
    assert group.route.receiver == "default"
    assert group.next_flush_at == NOON + 30


def test_a_reload_builds_groups_from_durable_rows_not_from_a_merge_held_in_memory() -> None:
    w = World()
    durable = w.post(alertname="Disk", host="h", ends=LATER)
    w.now = NOON + 30
    w.flush()
    # A resolve answered by this replica for a group another one owns: merged into the
    # book, its record on its way to the owner, not durable yet.
    w.now = NOON + 40
    _, merged = w.engine.alerts.put(replace(durable, ends_at=w.now, updated_at=w.now), w.now)
    assert merged is not None
    assert merged.resolved(w.now)
    w.engine.reconfigure(parse_config(CONFIG), [durable], w.now, lambda _key: True)
    (group,) = [g for g in w.engine.dispatcher.groups() if durable.fingerprint in g.alerts]
    assert group.alerts[durable.fingerprint].status_at(w.now) is AlertStatus.FIRING
