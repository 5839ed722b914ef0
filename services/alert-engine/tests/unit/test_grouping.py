"""Routes and aggregation groups with Alertmanager's timers, in simulated time."""

from __future__ import annotations

import pytest

from alert_engine.core.grouping import ALL_LABELS, Dispatcher, GroupedAlert, Route
from opsmesh.events.alerts import AlertStatus
from opsmesh.labels import fingerprint

T0 = 1_700_000_000.0
WAIT, INTERVAL = 30.0, 300.0


def alert(
    name: str = "CpuHot",
    *,
    starts_at: float = T0,
    status: AlertStatus = AlertStatus.FIRING,
    **labels: str,
) -> GroupedAlert:
    full = {"alertname": name, **labels}
    return GroupedAlert(
        fingerprint=fingerprint(full),
        labels=full,
        annotations={},
        starts_at=starts_at,
        ends_at=None if status is AlertStatus.FIRING else starts_at + 60,
        status=status,
    )


def resolved(a: GroupedAlert, at: float) -> GroupedAlert:
    return GroupedAlert(a.fingerprint, a.labels, {}, a.starts_at, at, AlertStatus.RESOLVED)


def dispatcher(**route: object) -> Dispatcher:
    fields: dict[str, object] = {
        "receiver": "team",
        "group_wait_s": WAIT,
        "group_interval_s": INTERVAL,
    }
    fields.update(route)
    return Dispatcher(Route(**fields))  # type: ignore[arg-type]


# -- keys ------------------------------------------------------------------------------


def test_group_key_format() -> None:
    assert Route("r").group_key({"alertname": "X", "host": "a"}) == '{}:{alertname="X"}'


def test_group_key_sorts_labels_and_includes_route_key() -> None:
    route = Route("r", group_by=("service", "alertname"), key='{}/{team="db"}')
    key = route.group_key({"service": "api", "alertname": "X", "host": "a"})
    assert key == '{}/{team="db"}:{alertname="X", service="api"}'


def test_group_by_skips_absent_labels() -> None:
    route = Route("r", group_by=("alertname", "cluster"))
    assert route.group_labels({"alertname": "X"}) == {"alertname": "X"}
    assert route.group_key({"alertname": "X"}) == '{}:{alertname="X"}'


def test_group_by_all_labels() -> None:
    route = Route("r", group_by=(ALL_LABELS,))
    labels = {"alertname": "X", "host": "a", "env": "prod"}
    assert route.group_labels(labels) == labels
    assert route.group_key(labels) == '{}:{alertname="X", env="prod", host="a"}'
    assert route.group_key({**labels, "host": "b"}) != route.group_key(labels)


def test_empty_group_by_makes_one_group() -> None:
    route = Route("r", group_by=())
    assert route.group_key({"alertname": "X"}) == route.group_key({"alertname": "Y"}) == "{}:{}"


def test_group_key_is_injective_for_values_with_quotes() -> None:
    route = Route("r", group_by=("a", "b"))
    sneaky = route.group_key({"a": 'x",b="y'})
    plain = route.group_key({"a": "x", "b": "y"})
    assert sneaky != plain
    assert plain == '{}:{a="x", b="y"}'


# -- repeat interval ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repeat", "interval", "expected"),
    [
        (4 * 3600.0, 300.0, 4 * 3600.0),
        (1000.0, 300.0, 1200.0),
        (60.0, 300.0, 300.0),
        (301.0, 300.0, 600.0),
    ],
)
def test_repeat_interval_rounds_up_to_a_multiple_of_group_interval(
    repeat: float, interval: float, expected: float
) -> None:
    route = Route("r", group_interval_s=interval, repeat_interval_s=repeat)
    assert route.repeat_interval_s == expected


@pytest.mark.parametrize("interval", [0.0, -1.0])
def test_group_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="group_interval"):
        Route("r", group_interval_s=interval)


# -- timers ------------------------------------------------------------------------------


def test_first_flush_after_group_wait() -> None:
    d = dispatcher()
    (group,) = d.insert(alert(starts_at=T0), T0)
    assert group.next_flush_at == T0 + WAIT
    assert d.due(T0 + WAIT - 0.001) == []
    assert d.due(T0 + WAIT) == [group]


def test_next_due_is_the_earliest_groups_flush_the_flusher_sleeps_until() -> None:
    d = dispatcher(group_by=("alertname",))
    assert d.next_due() is None
    (later,) = d.insert(alert("Later"), T0 + 5)
    assert d.next_due() == T0 + 5 + WAIT
    (first,) = d.insert(alert("First"), T0)
    assert d.next_due() == T0 + WAIT
    d.flushed(first, list(first.alerts.values()), T0 + WAIT)  # next one at group_interval
    assert d.next_due() == later.next_flush_at == T0 + 5 + WAIT


def test_alerts_joining_during_group_wait_do_not_move_it() -> None:
    d = dispatcher()
    (group,) = d.insert(alert(host="a"), T0)
    (same,) = d.insert(alert(host="b", starts_at=T0 + 10), T0 + 10)
    assert same is group
    assert len(group.alerts) == 2
    assert group.next_flush_at == T0 + WAIT


def test_immediate_flush_when_the_alert_is_older_than_group_wait() -> None:
    d = dispatcher()
    (group,) = d.insert(alert(starts_at=T0 - WAIT - 1), T0)
    assert group.next_flush_at == T0
    assert d.due(T0) == [group]


def test_no_immediate_flush_exactly_at_group_wait() -> None:
    d = dispatcher()
    (group,) = d.insert(alert(starts_at=T0 - WAIT), T0)
    assert group.next_flush_at == T0 + WAIT


def test_old_alert_joining_before_the_first_flush_flushes_now() -> None:
    # Alertmanager's aggrGroup.insert checks every alert until the group has flushed.
    d = dispatcher()
    (group,) = d.insert(alert(host="new", starts_at=T0), T0)
    d.insert(alert(host="old", starts_at=T0 - 600), T0 + 5)
    assert group.next_flush_at == T0 + 5


def test_old_alert_joining_after_a_flush_waits_for_group_interval() -> None:
    d = dispatcher()
    (group,) = d.insert(alert(host="new"), T0)
    d.flushed(group, list(group.alerts.values()), T0 + WAIT)
    d.insert(alert(host="old", starts_at=T0 - 600), T0 + WAIT + 1)
    assert group.next_flush_at == T0 + WAIT + INTERVAL


def test_group_interval_after_flush() -> None:
    d = dispatcher()
    (group,) = d.insert(alert(), T0)
    d.flushed(group, list(group.alerts.values()), T0 + WAIT)
    assert group.next_flush_at == T0 + WAIT + INTERVAL
    assert d.due(T0 + WAIT + INTERVAL - 1) == []
    assert d.due(T0 + WAIT + INTERVAL) == [group]


def test_due_is_ordered_by_flush_time() -> None:
    d = dispatcher()
    (late,) = d.insert(alert("B"), T0 + 10)
    (early,) = d.insert(alert("A"), T0)
    assert d.due(T0 + 100) == [early, late]


def test_separate_groups_per_key() -> None:
    d = dispatcher()
    (a,) = d.insert(alert("A"), T0)
    (b,) = d.insert(alert("B"), T0)
    assert a is not b
    assert {g.key for g in d.groups()} == {'{}:{alertname="A"}', '{}:{alertname="B"}'}
    assert a.labels == {"alertname": "A"}
    assert d.route.receiver == "team"


# -- after a flush -----------------------------------------------------------------------


def test_resolved_alerts_covered_by_a_flush_leave_the_group() -> None:
    d = dispatcher()
    keep = alert(host="a")
    gone = resolved(alert(host="b"), T0 + 5)
    (group,) = d.insert(keep, T0)
    d.insert(gone, T0 + 5)
    assert group.firing(T0 + 5) == [keep]
    assert group.resolved(T0 + 5) == [gone]
    d.flushed(group, [keep, gone], T0 + WAIT)
    assert list(group.alerts.values()) == [keep]
    assert d.groups() == [group]


def test_resolved_alert_that_changed_during_the_flush_stays() -> None:
    d = dispatcher()
    first = resolved(alert(host="a"), T0 + 5)
    (group,) = d.insert(alert(host="keep"), T0)
    d.insert(first, T0 + 5)
    refired = alert(host="a", starts_at=T0 + 20)
    d.insert(refired, T0 + 20)  # fired again while the flush was in flight
    d.flushed(group, [first], T0 + WAIT)
    assert group.alerts[first.fingerprint] == refired


def test_resolved_alert_not_covered_by_the_flush_stays() -> None:
    d = dispatcher()
    (group,) = d.insert(alert(host="keep"), T0)
    late = resolved(alert(host="b"), T0 + 40)
    d.insert(late, T0 + 40)
    d.flushed(group, [], T0 + 40)
    assert late.fingerprint in group.alerts


def test_firing_alerts_stay_after_a_flush() -> None:
    d = dispatcher()
    a = alert()
    (group,) = d.insert(a, T0)
    d.flushed(group, [a], T0 + WAIT)
    assert group.alerts == {a.fingerprint: a}


def test_empty_group_is_dropped() -> None:
    d = dispatcher()
    gone = resolved(alert(), T0)
    (group,) = d.insert(gone, T0)
    d.flushed(group, [gone], T0 + WAIT)
    assert d.groups() == []
    assert d.due(T0 + 10 * INTERVAL) == []
    # A new alert with the same key starts a new group with a fresh group_wait.
    (again,) = d.insert(alert(starts_at=T0 + 100), T0 + 100)
    assert again is not group
    assert again.next_flush_at == T0 + 100 + WAIT


def test_a_flush_of_a_group_dropped_meanwhile_leaves_its_successor_alone() -> None:
    d = dispatcher()
    a = alert(instance="x")
    group = d.insert(a, T0)[0]
    d.drop(lambda g: False)  # a rebalance took the partition away mid-flush ...
    successor = d.insert(a, T0 + 1)[0]  # ... and gave it back
    d.flushed(group, [resolved(a, T0)], T0 + 2)
    assert d.groups() == [successor]
    assert not successor.has_flushed
