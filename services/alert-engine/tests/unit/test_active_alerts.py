"""Active alerts: NEW/UPDATED/LIMITED ingest, the per-alertname limit, collection."""

from __future__ import annotations

from alert_engine.core.active_alerts import ActiveAlerts, IngestLimits, IngestOutcome
from alert_engine.core.alerts import StoredAlert
from opsmesh.labels import fingerprint

T0 = 1_700_000_000.0


def alert(
    name: str = "Down",
    host: str = "a",
    *,
    starts: float = T0,
    ends: float | None = T0 + 300,
    updated: float = T0,
    summary: str = "",
) -> StoredAlert:
    labels = {"alertname": name, "host": host}
    return StoredAlert(
        fingerprint(labels), labels, {"summary": summary}, starts, ends, updated, timeout=True
    )


def test_put_new_then_updated() -> None:
    active = ActiveAlerts()
    outcome, stored = active.put(alert(summary="one"), T0)
    assert outcome is IngestOutcome.NEW
    assert stored is not None
    assert active.get(stored.fingerprint) == stored
    assert len(active) == 1
    outcome, merged = active.put(
        alert(starts=T0 + 10, ends=T0 + 360, updated=T0 + 60, summary="two"), T0 + 60
    )
    assert outcome is IngestOutcome.UPDATED
    assert merged is not None
    assert merged.starts_at == T0  # merged: earliest start kept
    assert merged.annotations == {"summary": "two"}
    assert active.get(merged.fingerprint) == merged
    assert len(active) == 1


def test_firing_and_all() -> None:
    active = ActiveAlerts()
    active.put(alert(host="a", ends=T0 + 300), T0)
    active.put(alert(host="b", ends=T0 + 30), T0)
    active.put(alert(host="c", ends=None), T0)
    assert len(active.all()) == 3
    assert {a.labels["host"] for a in active.firing(T0 + 10)} == {"a", "b", "c"}
    assert {a.labels["host"] for a in active.firing(T0 + 30)} == {"a", "c"}
    assert {a.labels["host"] for a in active.firing(T0 + 1e9)} == {"c"}


def test_limit_drops_new_alerts_over_the_limit() -> None:
    active = ActiveAlerts(IngestLimits(per_alertname=2))
    assert active.put(alert(host="a"), T0)[0] is IngestOutcome.NEW
    assert active.put(alert(host="b"), T0)[0] is IngestOutcome.NEW
    outcome, stored = active.put(alert(host="c"), T0)
    assert outcome is IngestOutcome.LIMITED
    assert stored is None
    assert active.get(alert(host="c").fingerprint) is None
    assert len(active) == 2


def test_limit_is_per_alertname() -> None:
    active = ActiveAlerts(IngestLimits(per_alertname=1))
    assert active.put(alert("Down", "a"), T0)[0] is IngestOutcome.NEW
    assert active.put(alert("Down", "b"), T0)[0] is IngestOutcome.LIMITED
    assert active.put(alert("Slow", "a"), T0)[0] is IngestOutcome.NEW


def test_updates_of_known_alerts_are_accepted_over_the_limit() -> None:
    active = ActiveAlerts(IngestLimits(per_alertname=1))
    active.put(alert(host="a"), T0)
    outcome, merged = active.put(alert(host="a", ends=T0 + 600, updated=T0 + 60), T0 + 60)
    assert outcome is IngestOutcome.UPDATED
    assert merged is not None
    assert merged.ends_at == T0 + 600


def test_resolved_new_alerts_are_not_limited() -> None:
    active = ActiveAlerts(IngestLimits(per_alertname=1))
    active.put(alert(host="a"), T0)
    outcome, _ = active.put(alert(host="b", starts=T0 - 60, ends=T0 - 1), T0)
    assert outcome is IngestOutcome.NEW


def test_an_explicit_resolve_frees_a_slot_at_once() -> None:
    active = ActiveAlerts(IngestLimits(per_alertname=1))
    active.put(alert(host="a"), T0)
    # an explicit resolve, stored when it has already taken effect
    _, resolved = active.put(alert(host="a", ends=T0 + 5, updated=T0 + 5), T0 + 5)
    assert resolved is not None
    assert resolved.resolved(T0 + 5)
    assert active.put(alert(host="b", updated=T0 + 6), T0 + 6)[0] is IngestOutcome.NEW


def test_timed_out_alerts_free_a_slot_after_refresh_activity() -> None:
    active = ActiveAlerts(IngestLimits(per_alertname=1))
    active.put(alert(host="a", ends=T0 + 300), T0)
    later = T0 + 301  # "a" timed out, but the active has not looked yet
    assert active.put(alert(host="b", ends=later + 300, updated=later), later)[0] is (
        IngestOutcome.LIMITED
    )
    active.refresh_activity(later)
    assert active.put(alert(host="b", ends=later + 300, updated=later), later)[0] is (
        IngestOutcome.NEW
    )
    # the timed-out one is still known: refreshing it is an update, not a new alert
    assert active.put(alert(host="a", starts=later, ends=later + 300, updated=later), later)[0] is (
        IngestOutcome.UPDATED
    )


def test_remove_frees_the_slot() -> None:
    active = ActiveAlerts(IngestLimits(per_alertname=1))
    a = alert(host="a")
    active.put(a, T0)
    active.remove(a.fingerprint)
    active.remove("unknown")  # no error
    assert active.get(a.fingerprint) is None
    assert active.put(alert(host="b"), T0)[0] is IngestOutcome.NEW


def test_no_limit_by_default() -> None:
    active = ActiveAlerts()
    for i in range(100):
        assert active.put(alert(host=str(i)), T0)[0] is IngestOutcome.NEW
    assert len(active) == 100


def test_restore_counts_against_the_limit() -> None:
    active = ActiveAlerts(IngestLimits(per_alertname=1))
    active.restore([alert(host="a")], T0)
    assert active.put(alert(host="b"), T0)[0] is IngestOutcome.LIMITED


def test_collectable() -> None:
    active = ActiveAlerts()
    old = alert(host="old", starts=T0 - 900, ends=T0 - 600)
    recent = alert(host="recent", starts=T0 - 900, ends=T0 - 10)
    grouped = alert(host="grouped", starts=T0 - 900, ends=T0 - 600)
    firing = alert(host="firing", ends=None)
    future = alert(host="future", ends=T0 + 600)
    active.restore([old, recent, grouped, firing, future], T0)
    got = active.collectable(T0, retention_s=300, in_groups={grouped.fingerprint})
    assert got == [old.fingerprint]
    # exactly at the retention boundary it is collectable
    assert recent.fingerprint in active.collectable(T0 + 290, retention_s=300, in_groups=set())
    assert recent.fingerprint not in active.collectable(T0 + 289, retention_s=300, in_groups=set())


def test_restore_keeps_a_newer_alert_held_here() -> None:
    # Merged here at T0+60, its row still on its way to the group's owner: a re-read of
    # the older row must not roll it back; a newer row replaces it.
    active = ActiveAlerts()
    active.put(alert(summary="new", updated=T0 + 60), T0 + 60)
    active.restore([alert(summary="old", updated=T0)], T0 + 61)
    assert active.all()[0].annotations == {"summary": "new"}
    active.restore([alert(summary="newest", updated=T0 + 90)], T0 + 91)
    assert active.all()[0].annotations == {"summary": "newest"}


def test_replace_all_keeps_alerts_on_their_way_and_forgets_collected_ones() -> None:
    active = ActiveAlerts()
    in_flight = alert(host="in-flight", updated=T0 + 60)
    newer_here = alert(host="newer", summary="here", updated=T0 + 60)
    collected = alert(host="collected", starts=T0 - 3600, ends=T0 - 1800, updated=T0 - 1800)
    deleted_firing = alert(host="gone", ends=None)
    for a in (in_flight, newer_here, collected):
        active.put(a, T0 + 60)
    active.restore([deleted_firing], T0 + 60)
    rows = [alert(host="newer", summary="row", updated=T0), alert(host="other")]
    active.replace_all(rows, T0 + 61, forgotten_after_s=900)
    held = {a.labels["host"]: a for a in active.all()}
    assert set(held) == {"in-flight", "newer", "other", "gone"}
    assert held["newer"].annotations == {"summary": "here"}
    # Without a row, only an alert resolved longer than forgotten_after_s is dropped.
    active.replace_all([], T0 + 61, forgotten_after_s=900)
    assert {a.labels["host"] for a in active.all()} == {"in-flight", "newer", "other", "gone"}
    active.replace_all([], T0 + 3600, forgotten_after_s=900)
    assert {a.labels["host"] for a in active.all()} == {"gone"}
