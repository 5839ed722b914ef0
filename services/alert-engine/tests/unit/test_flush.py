"""plan_flush: what one flush sends, and a stable idempotency key for it."""

from __future__ import annotations

from alert_engine.core.decision import LogEntry
from alert_engine.core.flush import idempotency_key, plan_flush
from alert_engine.core.grouping import (
    AggregationGroup,
    Dispatcher,
    GroupedAlert,
    Route,
    grid_instant,
)
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotifyReason
from opsmesh.labels import fingerprint

T0 = 1_700_000_000.0
ROUTE = Route("team", group_wait_s=30, group_interval_s=300, repeat_interval_s=3600)


def alert(host: str, status: AlertStatus = AlertStatus.FIRING) -> GroupedAlert:
    labels = {"alertname": "CpuHot", "host": host}
    ends = None if status is AlertStatus.FIRING else T0 + 10
    return GroupedAlert(fingerprint(labels), labels, {}, T0, ends, status)


def group(*alerts: GroupedAlert) -> AggregationGroup:
    d = Dispatcher(ROUTE)
    (g,) = d.insert(alerts[0], T0)
    for a in alerts[1:]:
        d.insert(a, T0)
    return g


def fp(host: str) -> str:
    return alert(host).fingerprint


def test_first_flush_plans_a_notification() -> None:
    g = group(alert("a"), alert("b", AlertStatus.RESOLVED))
    plan = plan_flush(g, None, T0 + 30)
    assert plan.reason is NotifyReason.FIRST_NOTIFICATION
    assert plan.receiver == "team"
    assert plan.group is g
    assert list(plan.covered) == list(g.alerts.values())
    assert plan.entry == LogEntry(frozenset({fp("a")}), frozenset({fp("b")}), T0 + 30, 1)
    assert plan.idempotency_key == idempotency_key(g.key, "team", plan.entry)


def test_nothing_to_send_plans_no_entry_and_no_key() -> None:
    g = group(alert("a", AlertStatus.RESOLVED))
    plan = plan_flush(g, None, T0 + 30)
    assert plan.reason is None
    assert plan.entry is None
    assert plan.idempotency_key is None
    assert len(plan.covered) == 1  # the flush still covers it, so it can leave the group


def test_plan_reasons_follow_the_log() -> None:
    last = LogEntry(frozenset({fp("a")}), frozenset(), T0, sequence=4)
    cases = [
        (group(alert("a"), alert("b")), NotifyReason.NEW_ALERTS, T0 + 60),
        (group(alert("a", AlertStatus.RESOLVED)), NotifyReason.ALL_RESOLVED, T0 + 60),
        # The group's grid: due at T0 + 30, then every 300 s. A repeat is decided at
        # the grid instant the flush serves (T0 + 3630 is the first one an hour on).
        (group(alert("a")), NotifyReason.REPEAT_INTERVAL_ELAPSED, T0 + 3630),
        (group(alert("a")), NotifyReason.REPEAT_INTERVAL_ELAPSED, T0 + 3631),  # a late tick
        (group(alert("a")), None, T0 + 3629),  # serves T0 + 3330
    ]
    for g, reason, now in cases:
        plan = plan_flush(g, last, now)
        assert plan.reason is reason, (reason, plan.reason)
        if reason is not None:
            assert plan.entry is not None
            assert plan.entry.sequence == 5
            # The log keeps the grid instant, not when the tick ran.
            assert plan.entry.notified_at == grid_instant(g.next_flush_at, 300, now)


def test_some_resolved_is_planned() -> None:
    last = LogEntry(frozenset({fp("a"), fp("b")}), frozenset(), T0, sequence=1)
    plan = plan_flush(group(alert("a"), alert("b", AlertStatus.RESOLVED)), last, T0 + 300)
    assert plan.reason is NotifyReason.SOME_RESOLVED


def test_repeat_interval_comes_from_the_route_rounded() -> None:
    route = Route("team", group_interval_s=300, repeat_interval_s=301)  # rounds to 600
    (g,) = Dispatcher(route).insert(alert("a"), T0)
    # Grid: T0 + 30 (group_wait), + 300 each; first notified at T0 + 30.
    last = LogEntry(frozenset({fp("a")}), frozenset(), T0 + 30, sequence=1)
    assert plan_flush(g, last, T0 + 330).reason is None
    assert plan_flush(g, last, T0 + 629).reason is None, "serves T0 + 330"
    assert plan_flush(g, last, T0 + 630).reason is NotifyReason.REPEAT_INTERVAL_ELAPSED


def test_idempotency_key_is_stable_for_the_same_flush() -> None:
    a = plan_flush(group(alert("a"), alert("b")), None, T0 + 30)
    # Another replica (or a restart) plans the same flush, alerts inserted in another order.
    b = plan_flush(group(alert("b"), alert("a")), None, T0 + 31)
    assert a.idempotency_key is not None
    assert a.idempotency_key == b.idempotency_key
    assert len(a.idempotency_key) == 40
    int(a.idempotency_key, 16)


def test_idempotency_key_differs_across_sequences() -> None:
    g = group(alert("a"))
    first = plan_flush(g, None, T0 + 30)
    assert first.entry is not None
    repeat = plan_flush(g, first.entry, T0 + 30 + 3600)
    assert repeat.reason is NotifyReason.REPEAT_INTERVAL_ELAPSED
    assert repeat.entry is not None
    assert repeat.entry.firing == first.entry.firing
    assert repeat.idempotency_key != first.idempotency_key


def test_idempotency_key_differs_across_alert_sets() -> None:
    one = plan_flush(group(alert("a")), None, T0 + 30)
    two = plan_flush(group(alert("a"), alert("b")), None, T0 + 30)
    moved = plan_flush(group(alert("a"), alert("b", AlertStatus.RESOLVED)), None, T0 + 30)
    keys = {one.idempotency_key, two.idempotency_key, moved.idempotency_key}
    assert len(keys) == 3


def test_idempotency_key_differs_across_receivers_and_groups() -> None:
    entry = LogEntry(frozenset({"a"}), frozenset(), T0, 1)
    base = idempotency_key('{}:{alertname="X"}', "team", entry)
    assert idempotency_key('{}:{alertname="X"}', "other", entry) != base
    assert idempotency_key('{}:{alertname="Y"}', "team", entry) != base
    # notified_at is not part of it: a re-plan at another time is the same flush
    later = LogEntry(frozenset({"a"}), frozenset(), T0 + 5, 1)
    assert idempotency_key('{}:{alertname="X"}', "team", later) == base


def test_without_any_integration_sending_resolved_resolves_alone_send_nothing() -> None:
    """Alertmanager's DedupStage: the resolved set counts only with send_resolved."""
    last = LogEntry(frozenset({fp("a"), fp("b")}), frozenset(), T0, sequence=1)
    g = group(alert("a"), alert("b", AlertStatus.RESOLVED))
    assert plan_flush(g, last, T0 + 300, send_resolved=False).reason is None
    # Everything resolved is still logged (the firing set is cleared), as Alertmanager does.
    gone = group(alert("a", AlertStatus.RESOLVED), alert("b", AlertStatus.RESOLVED))
    assert plan_flush(gone, last, T0 + 300, send_resolved=False).reason is (
        NotifyReason.ALL_RESOLVED
    )
    fresh = group(alert("a"), alert("b", AlertStatus.RESOLVED), alert("c"))
    assert plan_flush(fresh, last, T0 + 300, send_resolved=False).reason is (
        NotifyReason.NEW_ALERTS
    )
