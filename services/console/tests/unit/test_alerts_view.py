"""The alerts page's view model: groups in the engine's order, matcher filters with the
engine's grammar, state filter, paging, ages and severities, and the pending rule alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.core.alerts import (
    FilterError,
    StateFilter,
    build_page,
    find_alert,
    parse_filter,
    receiver_load,
    receivers_of,
)
from console.core.shapes import Alert, AlertGroup, AlertStatus, PendingAlert, Receiver

NOW = 1_800_000_000.0


def alert(fp: str, *, started_s_ago: float = 60, state: str = "active", **labels: str) -> Alert:
    return Alert(
        labels=labels,
        fingerprint=fp,
        starts_at=datetime.fromtimestamp(NOW - started_s_ago, UTC),
        status=AlertStatus(state=state, silenced_by=["s1"] if state == "suppressed" else []),
    )


def group(receiver: str, *alerts: Alert, **labels: str) -> AlertGroup:
    return AlertGroup(labels=labels, receiver=Receiver(receiver), alerts=list(alerts))


GROUPS = [
    group(
        "db-pager",
        alert("a1", alertname="DiskFull", team="db", severity="critical"),
        alert("a2", alertname="DiskFull", team="db", severity="warning", state="suppressed"),
        alertname="DiskFull",
    ),
    group(
        "web",
        alert("b1", started_s_ago=3700, alertname="Slow", team="web", severity="warning"),
        team="web",
    ),
]


def test_no_filter_keeps_every_group_in_the_engines_order() -> None:
    page = build_page(GROUPS, (), now=NOW)
    assert [g.receiver for g in page.groups] == ["db-pager", "web"]
    assert (page.matched_alerts, page.total_alerts, page.matched_groups) == (3, 3, 2)
    first = page.groups[0]
    assert first.labels == (("alertname", "DiskFull"),)
    assert (first.active, first.suppressed, first.worst_severity) == (1, 1, "critical")
    assert [r.age for r in page.groups[1].rows] == ["1h1m"]


def test_a_filter_in_amtools_grammar_keeps_only_matching_alerts_and_their_groups() -> None:
    page = build_page(GROUPS, parse_filter('team="db", severity=~"crit.*"'), now=NOW)
    assert [g.receiver for g in page.groups] == ["db-pager"]
    assert [r.alert.fingerprint for r in page.groups[0].rows] == ["a1"]
    assert page.matched_alerts == 1


def test_braces_and_negative_matchers_parse_as_the_engine_parses_them() -> None:
    page = build_page(GROUPS, parse_filter('{team!="db"}'), now=NOW)
    assert [r.alert.fingerprint for g in page.groups for r in g.rows] == ["b1"]


@pytest.mark.parametrize("text", ['team="db', "team", 'x=~"("'])
def test_a_bad_filter_is_an_error_that_names_the_problem(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_an_empty_filter_is_every_alert() -> None:
    assert parse_filter("  ") == ()


def test_the_state_filter_separates_active_from_suppressed() -> None:
    active = build_page(GROUPS, (), now=NOW, state=StateFilter.ACTIVE)
    suppressed = build_page(GROUPS, (), now=NOW, state=StateFilter.SUPPRESSED)
    assert [r.alert.fingerprint for g in active.groups for r in g.rows] == ["a1", "b1"]
    assert [r.alert.fingerprint for g in suppressed.groups for r in g.rows] == ["a2"]


def test_pages_of_groups_and_a_bounded_number_of_alerts_per_group() -> None:
    many = [group(f"r{i}", *(alert(f"{i}-{j}", n=str(j)) for j in range(5))) for i in range(7)]
    page = build_page(many, (), now=NOW, page=2, groups_per_page=3, alerts_per_group=2)
    assert (page.page, page.pages) == (2, 3)
    assert [g.receiver for g in page.groups] == ["r3", "r4", "r5"]
    assert all(len(g.rows) == 2 and g.hidden == 3 for g in page.groups)
    past_the_end = build_page(many, (), now=NOW, page=99, groups_per_page=3)
    assert past_the_end.page == 3
    assert [g.receiver for g in past_the_end.groups] == ["r6"]


def test_an_alert_and_its_receivers_are_found_by_fingerprint() -> None:
    twice = [*GROUPS, group("audit", alert("a1", alertname="DiskFull", team="db"))]
    found = find_alert(twice, "a1")
    assert found is not None
    assert found.labels["alertname"] == "DiskFull"
    assert receivers_of(twice, "a1") == ["audit", "db-pager"]
    assert find_alert(twice, "nope") is None


def test_each_receivers_load_counts_its_groups_and_their_alerts() -> None:
    load = receiver_load([*GROUPS, group("web", alert("b2", team="web"))])
    assert [(r.receiver, r.groups, r.active, r.suppressed) for r in load] == [
        ("db-pager", 1, 1, 1),
        ("web", 2, 2, 0),
    ]


def pending(fp: str, *, for_s: float = 30, **labels: str) -> PendingAlert:
    return PendingAlert(
        fingerprint=fp, rule=labels.get("alertname", "R"), labels=labels, active_at=NOW - for_s
    )


PENDING = [
    pending("p1", for_s=30, alertname="DiskFilling", team="db", severity="warning"),
    pending("p2", for_s=600, alertname="Slow", team="web"),
]


def test_pending_alerts_show_longest_pending_first_with_since_when_and_rule() -> None:
    page = build_page(GROUPS, (), now=NOW, pending=PENDING)
    assert [(r.alert.fingerprint, r.since, r.name) for r in page.pending] == [
        ("p2", "10m", "Slow"),
        ("p1", "30s", "DiskFilling"),
    ]
    assert (page.matched_pending, page.total_pending, page.hidden_pending) == (2, 2, 0)
    assert page.matched_alerts == 3  # the routed alerts are counted apart


def test_the_state_filter_and_matchers_apply_to_pending_alerts_too() -> None:
    only = build_page(GROUPS, (), now=NOW, state=StateFilter.PENDING, pending=PENDING)
    assert (only.groups, only.matched_alerts) == ((), 0)
    assert [r.alert.fingerprint for r in only.pending] == ["p2", "p1"]
    db = build_page(GROUPS, parse_filter('team="db"'), now=NOW, pending=PENDING)
    assert [r.alert.fingerprint for r in db.pending] == ["p1"]
    assert (db.matched_pending, db.total_pending) == (1, 2)
    for state in (StateFilter.ACTIVE, StateFilter.SUPPRESSED):
        assert build_page(GROUPS, (), now=NOW, state=state, pending=PENDING).pending == ()


def test_pending_alerts_are_bounded_like_a_groups_alerts_and_say_how_many_are_hidden() -> None:
    many = [pending(f"p{i}", for_s=i, alertname="Many") for i in range(30)]
    page = build_page([], (), now=NOW, pending=many, alerts_per_group=25)
    assert len(page.pending) == 25
    assert page.hidden_pending == 5
    assert page.pending[0].alert.fingerprint == "p29"  # the longest pending
    unknown = PendingAlert(fingerprint="x", rule="R", labels={})
    assert build_page([], (), now=NOW, pending=[unknown]).pending[0].since == ""
