"""The API's listings (``core/listing.py``): the groups and alerts of one snapshot, the
same whichever replica computes them, with Alertmanager's filters and statuses."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import parse_config
from alert_engine.core.engine import Engine
from alert_engine.core.listing import ListedGroup, Listing, ListQuery, overlay
from alert_engine.core.matchers import parse_matchers
from alert_engine.core.regex import anchored
from alert_engine.core.silences import Silence, Silences
from opsmesh.labels import fingerprint

CONFIG = textwrap.dedent(
    """\
    route:
      receiver: default
      group_by: [alertname]
      routes:
        - receiver: pager
          matchers: ['severity="page"']
          group_by: [alertname, cluster]
          continue: true
        - receiver: audit
          matchers: ['cluster="a"']
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
      - source_matchers: ['severity="page"']
        target_matchers: ['severity="warning"']
        equal: [cluster]
    receivers: [{name: default}, {name: pager}, {name: audit}, {name: night}, {name: office}]
    """
)

NOON = datetime(2024, 1, 2, 12, 0, tzinfo=UTC).timestamp()
THREE_AM = datetime(2024, 1, 2, 3, 0, tzinfo=UTC).timestamp()


def engine() -> Engine:
    return Engine(parse_config(CONFIG), ActiveAlerts(), Silences())


def alert(updated: float = NOON - 60, ends: float | None = None, **labels: str) -> StoredAlert:
    return StoredAlert(fingerprint(labels), labels, {}, NOON - 600, ends, updated)


def silence(matchers: str, sid: str = "s1") -> Silence:
    return Silence(sid, tuple(parse_matchers(matchers)), NOON - 60, NOON + 3600, "me", "", NOON)


def shape(groups: list[ListedGroup]) -> list[tuple[str, dict[str, str], list[str]]]:
    return [
        (g.route.receiver, g.labels, [a.alert.labels["instance"] for a in g.alerts]) for g in groups
    ]


PAGE_A = alert(alertname="Down", severity="page", cluster="a", instance="1")
WARN_A = alert(alertname="Slow", severity="warning", cluster="a", instance="2")
WARN_B = alert(alertname="Slow", severity="warning", cluster="b", instance="3")
NIGHT = alert(alertname="Batch", team="night", instance="4")
OFFICE = alert(alertname="Desk", team="office", instance="5")
SNAPSHOT = [NIGHT, WARN_B, OFFICE, PAGE_A, WARN_A]


def test_groups_are_made_by_the_route_tree_whatever_groups_the_replica_owns() -> None:
    """Two replicas own different groups (or none); both list every group the route tree
    makes of the snapshot, in Alertmanager's order: by label set, then receiver."""
    owner, other = engine(), engine()
    for a in SNAPSHOT[:2]:
        owner.apply(a, NOON)  # groups only the owner holds; the listing ignores them
    listed = [
        shape(Listing(e, SNAPSHOT, Silences(), NOON).groups(ListQuery())) for e in (owner, other)
    ]
    assert listed[0] == listed[1]
    assert listed[0] == [
        ("night", {"alertname": "Batch"}, ["4"]),
        ("office", {"alertname": "Desk"}, ["5"]),
        ("audit", {"alertname": "Down"}, ["1"]),  # pager has `continue`: audit too
        ("audit", {"alertname": "Slow"}, ["2"]),
        ("default", {"alertname": "Slow"}, ["3"]),  # same labels: by receiver
        ("pager", {"alertname": "Down", "cluster": "a"}, ["1"]),
    ]


def test_an_alert_lists_the_receivers_of_the_listed_groups_it_is_in() -> None:
    listing = Listing(engine(), SNAPSHOT, Silences(), NOON)
    receivers = {
        a.alert.labels["instance"]: a.view.receivers
        for g in listing.groups(ListQuery())
        for a in g.alerts
    }
    assert receivers["1"] == ["audit", "pager"]
    only_pager = listing.groups(ListQuery(receiver=anchored("pag.*")))
    assert shape(only_pager) == [("pager", {"alertname": "Down", "cluster": "a"}, ["1"])]
    assert only_pager[0].alerts[0].view.receivers == ["pager"]


def test_silenced_and_inhibited_alerts_carry_their_status_and_can_be_left_out() -> None:
    silences = Silences([silence('alertname="Batch"')])
    listing = Listing(engine(), SNAPSHOT, silences, NOON)
    views = {
        a.alert.labels["instance"]: a.view for g in listing.groups(ListQuery()) for a in g.alerts
    }
    assert (views["4"].state, views["4"].silenced_by) == ("suppressed", ["s1"])
    # Inhibited by the page of its cluster; the other cluster's warning is not.
    assert (views["2"].state, views["2"].inhibited_by) == ("suppressed", [PAGE_A.fingerprint])
    assert (views["3"].state, views["3"].inhibited_by) == ("active", [])

    def instances(query: ListQuery) -> list[str]:
        return sorted(a.alert.labels["instance"] for g in listing.groups(query) for a in g.alerts)

    assert instances(ListQuery(silenced=False)) == ["1", "1", "2", "3", "5"]
    assert instances(ListQuery(inhibited=False)) == ["1", "1", "3", "4", "5"]
    assert instances(ListQuery(active=False)) == ["2", "4"]
    # A filter that leaves the inhibiting alert out does not lift its inhibition.
    only_warnings = ListQuery(matchers=tuple(parse_matchers('severity="warning"')))
    assert instances(only_warnings) == ["2", "3"]
    assert instances(ListQuery(matchers=only_warnings.matchers, inhibited=False)) == ["3"]


def test_ended_alerts_are_not_listed_and_inhibit_nothing() -> None:
    ended = alert(ends=NOON - 1, alertname="Down", severity="page", cluster="a", instance="1")
    listing = Listing(engine(), [ended, WARN_A], Silences(), NOON)
    assert shape(listing.groups(ListQuery())) == [("audit", {"alertname": "Slow"}, ["2"])]
    assert [a.view.state for a in listing.alerts(ListQuery())] == ["active"]


def test_time_muted_groups_say_by_what_and_are_left_out_with_muted_false() -> None:
    at_three = Listing(engine(), SNAPSHOT, Silences(), THREE_AM)
    groups = {g.route.receiver: g for g in at_three.groups(ListQuery())}
    assert groups["night"].alerts[0].view.muted_by == ["nights"]
    assert groups["night"].alerts[0].view.state == "suppressed"
    assert groups["office"].alerts[0].view.muted_by == ["office-hours"]  # outside it
    assert {g.route.receiver for g in at_three.groups(ListQuery(muted=False))} == {
        "audit",
        "default",
        "pager",
    }
    at_noon = {
        g.route.receiver: g
        for g in Listing(engine(), SNAPSHOT, Silences(), NOON).groups(ListQuery())
    }
    assert at_noon["night"].alerts[0].view.muted_by == []
    assert at_noon["office"].alerts[0].view.muted_by == []


def test_alerts_are_listed_by_fingerprint_with_every_receiver_of_their_routes() -> None:
    listing = Listing(engine(), SNAPSHOT, Silences(), NOON)
    listed = listing.alerts(ListQuery())
    assert [a.alert.fingerprint for a in listed] == sorted(a.fingerprint for a in SNAPSHOT)
    by_instance = {a.alert.labels["instance"]: a.view.receivers for a in listed}
    assert by_instance["1"] == ["audit", "pager"]
    assert [
        a.alert.labels["instance"] for a in listing.alerts(ListQuery(receiver=anchored("night")))
    ] == ["4"]


def test_overlay_keeps_the_newer_of_row_and_held_version_and_what_has_no_row_yet() -> None:
    row = alert(updated=NOON - 30, alertname="A", instance="1")
    newer_held = alert(updated=NOON - 10, ends=NOON - 5, alertname="A", instance="1")
    older_held = alert(updated=NOON - 50, alertname="B", instance="2")
    row_b = alert(updated=NOON - 20, ends=NOON - 15, alertname="B", instance="2")
    on_its_way = alert(updated=NOON - 1, alertname="C", instance="3")
    current = {
        a.fingerprint: a for a in overlay([row, row_b], [newer_held, older_held, on_its_way])
    }
    assert current == {
        row.fingerprint: newer_held,  # a resolve merged here, its row not written yet
        row_b.fingerprint: row_b,  # resolved by its owner since this replica's last sync
        on_its_way.fingerprint: on_its_way,
    }
