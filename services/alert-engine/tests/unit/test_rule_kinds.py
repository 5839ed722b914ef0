"""Absence, rate-of-change and finding rules, and tick(), in simulated time."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from alert_engine.core.evaluation import (
    MAX_RATE_HISTORY,
    AlertInstance,
    Evaluator,
    SeriesSeen,
    Transition,
)
from alert_engine.core.rules import Comparison, Rule, RuleKind
from opsmesh.events.alerts import AlertState
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.labels import fingerprint

T0 = 1_700_000_000.0
PENDING, FIRING, RESOLVED, INACTIVE = (
    AlertState.PENDING,
    AlertState.FIRING,
    AlertState.RESOLVED,
    AlertState.INACTIVE,
)


def signal(
    name: str,
    value: float = 1.0,
    labels: Mapping[str, str] | None = None,
    *,
    source: SignalSource = SignalSource.METRICS,
    kind: SignalKind = SignalKind.ROLLUP,
    stats: Mapping[str, float] | None = None,
) -> SignalObserved:
    return SignalObserved(
        source=source,
        kind=kind,
        name=name,
        subject=name,
        labels=dict(labels if labels is not None else {"instance": "a"}),
        value=value,
        stats=dict(stats or {}),
        observed_at=T0,
    )


def states(transitions: list[Transition]) -> list[tuple[AlertState, AlertState]]:
    return [(t.previous, t.alert.state) for t in transitions]


# -- absence -------------------------------------------------------------------------


def absence(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "name": "NoHeartbeat",
        "signal": "heartbeat",
        "kind": RuleKind.ABSENCE,
        "absent_for_s": 60.0,
        "annotations": {"summary": "{{ labels.instance }} silent for {{ value }}s"},
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def test_absence_fires_once_a_seen_series_is_silent_for_absent_for() -> None:
    ev = Evaluator([absence()])
    assert ev.observe(signal("heartbeat"), T0) == []
    assert ev.tick(T0 + 59) == []
    (fired,) = ev.tick(T0 + 60)
    assert states([fired]) == [(INACTIVE, FIRING)]
    assert dict(fired.alert.labels) == {"instance": "a", "alertname": "NoHeartbeat"}
    assert fired.alert.value == 60.0
    assert fired.alert.annotations["summary"] == "a silent for 60.0s"
    assert ev.tick(T0 + 90) == []  # still firing: no new transition
    assert ev.active()[0].value == 90.0


def test_absence_resolves_when_the_series_returns() -> None:
    ev = Evaluator([absence()])
    ev.observe(signal("heartbeat"), T0)
    ev.tick(T0 + 60)
    (resolved,) = ev.observe(signal("heartbeat"), T0 + 70)
    assert states([resolved]) == [(FIRING, RESOLVED)]
    assert resolved.alert.resolved_at == T0 + 70
    assert ev.active() == []
    assert ev.tick(T0 + 100) == []  # seen at +70: not silent for 60 s yet


def test_absence_is_per_series() -> None:
    ev = Evaluator([absence()])
    ev.observe(signal("heartbeat", labels={"instance": "a"}), T0)
    ev.observe(signal("heartbeat", labels={"instance": "b"}), T0 + 30)
    (fired,) = ev.tick(T0 + 60)
    assert fired.alert.labels["instance"] == "a"
    (fired_b,) = ev.tick(T0 + 90)
    assert fired_b.alert.labels["instance"] == "b"


def test_absence_with_for_goes_through_pending() -> None:
    ev = Evaluator([absence(for_s=30.0)])
    ev.observe(signal("heartbeat"), T0)
    assert states(ev.tick(T0 + 60)) == [(INACTIVE, PENDING)]
    assert ev.tick(T0 + 80) == []
    assert states(ev.tick(T0 + 90)) == [(PENDING, FIRING)]


def test_absence_pending_ends_quietly_when_data_returns() -> None:
    ev = Evaluator([absence(for_s=30.0)])
    ev.observe(signal("heartbeat"), T0)
    ev.tick(T0 + 60)
    assert states(ev.observe(signal("heartbeat"), T0 + 70)) == [(PENDING, INACTIVE)]


def test_absence_of_any_series_fires_with_the_matcher_labels() -> None:
    """Like Prometheus' absent(): nothing ever matched, counted from the first tick."""
    ev = Evaluator([absence(matchers={"service": "checkout"}, labels={"severity": "page"})])
    assert ev.tick(T0) == []
    (fired,) = ev.tick(T0 + 60)
    assert dict(fired.alert.labels) == {
        "service": "checkout",
        "severity": "page",
        "alertname": "NoHeartbeat",
    }
    other = signal("heartbeat", labels={"service": "payments", "instance": "p"})
    assert ev.observe(other, T0 + 61) == []  # does not match the rule
    (resolved,) = ev.observe(signal("heartbeat", labels={"service": "checkout"}), T0 + 62)
    assert resolved.alert.fingerprint == fired.alert.fingerprint
    assert resolved.alert.state is RESOLVED


def test_absence_by_labels_defines_the_series() -> None:
    ev = Evaluator([absence(by=("instance",))])
    ev.observe(signal("heartbeat", labels={"instance": "a", "cause": "x"}), T0)
    ev.observe(signal("heartbeat", labels={"instance": "a", "cause": "y"}), T0 + 50)
    assert ev.tick(T0 + 60) == []  # one series, seen at +50
    (fired,) = ev.tick(T0 + 110)
    assert dict(fired.alert.labels) == {"instance": "a", "alertname": "NoHeartbeat"}


def test_absence_keep_firing_for_ends_on_tick() -> None:
    ev = Evaluator([absence(keep_firing_for_s=30.0)])
    ev.observe(signal("heartbeat"), T0)
    ev.tick(T0 + 60)
    assert ev.observe(signal("heartbeat"), T0 + 70) == []
    (kept,) = ev.take_updates()
    assert kept.keep_firing_since == T0 + 70
    assert ev.tick(T0 + 99) == []
    assert states(ev.tick(T0 + 100)) == [(FIRING, RESOLVED)]


def test_last_seen_is_exposed_for_persistence_and_restored() -> None:
    rule = absence()
    ev = Evaluator([rule])
    ev.observe(signal("heartbeat"), T0)
    ev.observe(signal("heartbeat"), T0 + 10)
    (update,) = ev.take_series_updates()
    series_fp = fingerprint({"instance": "a"})
    assert update == SeriesSeen(rule.key, series_fp, {"instance": "a"}, T0 + 10)
    assert ev.take_series_updates() == []
    assert ev.seen_series() == [update]

    restarted = Evaluator([rule])
    restarted.restore_series([update, SeriesSeen("gone/Rule", "x", {}, T0)])
    assert restarted.seen_series() == [update]
    (fired,) = restarted.tick(T0 + 70)
    assert fired.alert.labels["instance"] == "a"


def test_restore_series_keeps_the_newest() -> None:
    rule = absence()
    ev = Evaluator([rule])
    ev.observe(signal("heartbeat"), T0 + 50)
    ev.restore_series([SeriesSeen(rule.key, fingerprint({"instance": "a"}), {"instance": "a"}, T0)])
    assert ev.seen_series()[0].last_seen == T0 + 50


def test_a_series_silent_for_forget_after_resolves_and_is_forgotten() -> None:
    ev = Evaluator([absence(forget_after_s=600.0)])
    ev.observe(signal("heartbeat", labels={"instance": "a"}), T0)
    ev.observe(signal("heartbeat", labels={"instance": "b"}), T0 + 550)
    ev.take_series_updates()
    fired = ev.tick(T0 + 60)
    assert [t.alert.labels["instance"] for t in fired] == ["a"]
    assert ev.tick(T0 + 599) == []
    (resolved,) = ev.tick(T0 + 601)
    assert states([resolved]) == [(FIRING, RESOLVED)]
    assert resolved.alert.labels["instance"] == "a"
    assert resolved.alert.value == 601.0
    assert [s.labels["instance"] for s in ev.seen_series()] == ["b"]
    assert ev.take_series_updates() == [], "forgetting writes nothing: the purge deletes"
    assert [t.alert.labels["instance"] for t in ev.tick(T0 + 610)] == ["b"]


def test_a_forgotten_series_that_comes_back_is_expected_again() -> None:
    ev = Evaluator([absence(by=("instance",), matchers={})], forget_after_s=600.0)
    ev.observe(signal("heartbeat", labels={"instance": "a"}), T0)
    ev.observe(signal("heartbeat", labels={"instance": "b"}), T0 + 1_500)
    ev.tick(T0 + 601)
    assert [s.labels["instance"] for s in ev.seen_series()] == ["b"]
    assert ev.observe(signal("heartbeat", labels={"instance": "a"}), T0 + 2_000) == []
    assert {s.labels["instance"] for s in ev.seen_series()} == {"a", "b"}
    fired = ev.tick(T0 + 2_060)
    assert {t.alert.labels["instance"] for t in fired} == {"a", "b"}


def test_when_every_series_is_forgotten_the_rule_waits_as_absent_does() -> None:
    """Nothing sends the signal any more: absent()'s alert on the matcher labels, silent
    since the last series was seen."""
    ev = Evaluator([absence(matchers={"service": "checkout"})])
    ev.observe(signal("heartbeat", labels={"service": "checkout", "instance": "a"}), T0)
    ev.tick(T0 + 60)
    day = 86_400.0
    transitions = ev.tick(T0 + day + 1)
    assert sorted(states(transitions)) == [(FIRING, RESOLVED), (INACTIVE, FIRING)]
    fired = next(t for t in transitions if t.alert.state is FIRING)
    assert dict(fired.alert.labels) == {"service": "checkout", "alertname": "NoHeartbeat"}
    assert fired.alert.value == day + 1
    assert ev.seen_series() == []


def test_the_default_forget_after_never_cuts_an_alert_short() -> None:
    long = absence(absent_for_s=2 * 86_400.0, for_s=3_600.0)
    ev = Evaluator([long], forget_after_s=86_400.0)
    assert ev.forget_after_s(long) > 2 * 86_400.0 + 3_600.0
    assert ev.forget_after_s(absence(forget_after_s=7_200.0)) == 7_200.0
    with pytest.raises(ValueError, match="longer than absent_for"):
        absence(forget_after_s=60.0)


def test_a_restored_row_past_forget_after_is_forgotten_at_the_first_tick() -> None:
    """A row the purge has not reached yet: forgotten before it could fire its own alert
    (what fires is absent()'s, the rule's only series being gone)."""
    rule = absence(forget_after_s=600.0)
    ev = Evaluator([rule])
    ev.restore_series([SeriesSeen(rule.key, fingerprint({"instance": "a"}), {"instance": "a"}, T0)])
    (fired,) = ev.tick(T0 + 700)
    assert dict(fired.alert.labels) == {"alertname": "NoHeartbeat"}
    assert ev.seen_series() == []


# -- rate of change ------------------------------------------------------------------


def rate(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "name": "LagGrowing",
        "signal": "lag",
        "kind": RuleKind.RATE,
        "op": Comparison.GT,
        "threshold": 1.0,
        "window_s": 60.0,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def test_rate_is_not_evaluated_until_the_window_is_covered() -> None:
    ev = Evaluator([rate()])
    assert ev.observe(signal("lag", 0), T0) == []
    assert ev.observe(signal("lag", 500), T0 + 30) == []  # 30 s of history < 60 s window
    (fired,) = ev.observe(signal("lag", 600), T0 + 60)
    assert states([fired]) == [(INACTIVE, FIRING)]
    assert fired.alert.value == pytest.approx(10.0)  # (600 - 0) / 60


def test_rate_uses_the_sample_at_the_window_start_as_baseline() -> None:
    ev = Evaluator([rate()])
    for step, value in enumerate([0, 100, 100, 100, 130]):
        transitions = ev.observe(signal("lag", value), T0 + 30 * step)
    # at +120 the baseline is +60 (100): (130 - 100) / 60 = 0.5, not above 1
    assert transitions == []
    (fired,) = ev.observe(signal("lag", 200), T0 + 150)  # baseline +90: (200-100)/60
    assert fired.alert.value == pytest.approx(100 / 60)


def test_rate_resolves_when_growth_stops_and_respects_for() -> None:
    ev = Evaluator([rate(for_s=30.0)])
    ev.observe(signal("lag", 0), T0)
    assert states(ev.observe(signal("lag", 120), T0 + 60)) == [(INACTIVE, PENDING)]
    assert states(ev.observe(signal("lag", 240), T0 + 90)) == [(PENDING, FIRING)]
    assert states(ev.observe(signal("lag", 240), T0 + 150)) == [(FIRING, RESOLVED)]


def test_rate_falling_compares_negative() -> None:
    ev = Evaluator([rate(op=Comparison.LT, threshold=-1.0)])
    ev.observe(signal("lag", 1000), T0)
    (fired,) = ev.observe(signal("lag", 400), T0 + 60)
    assert fired.alert.value == pytest.approx(-10.0)


def test_rate_history_is_per_series_and_uses_the_stat() -> None:
    ev = Evaluator([rate(stat="last")])
    ev.observe(signal("lag", 0, {"p": "0"}, stats={"last": 0}), T0)
    ev.observe(signal("lag", 0, {"p": "1"}, stats={"last": 0}), T0)
    (fired,) = ev.observe(signal("lag", 0, {"p": "0"}, stats={"last": 120}), T0 + 60)
    assert fired.alert.labels["p"] == "0"
    assert ev.observe(signal("lag", 999, {"p": "1"}, stats={"last": 0}), T0 + 60) == []
    assert ev.observe(signal("lag", 0, {"p": "1"}, stats={}), T0 + 70) == []  # no stat


def test_rate_ignores_out_of_order_samples() -> None:
    ev = Evaluator([rate()])
    ev.observe(signal("lag", 0), T0 + 60)
    assert ev.observe(signal("lag", 1000), T0) == []
    (fired,) = ev.observe(signal("lag", 120), T0 + 120)
    assert fired.alert.value == pytest.approx(2.0)


def test_rate_history_is_bounded() -> None:
    ev = Evaluator([rate(window_s=10_000.0)])
    for step in range(MAX_RATE_HISTORY * 3):
        ev.observe(signal("lag", step), T0 + step)
    (history,) = ev._history.values()
    assert len(history) <= MAX_RATE_HISTORY
    assert history[0] == (T0, 0)  # the baseline survives thinning


# -- findings ------------------------------------------------------------------------


def health(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "name": "Unhealthy",
        "signal": "health_check_status",
        "kind": RuleKind.FINDING,
        "op": Comparison.GE,
        "threshold": 2.0,
        "by": ("service", "instance", "check"),
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def status(value: float, cause: str = "reported") -> SignalObserved:
    return signal(
        "health_check_status",
        value,
        {"service": "api", "instance": "api-1", "check": "db", "cause": cause},
        source=SignalSource.HEALTH,
        kind=SignalKind.STATUS,
    )


def test_health_fail_fires_and_a_later_pass_resolves_across_causes() -> None:
    ev = Evaluator([health()])
    (fired,) = ev.observe(status(2.0, cause="ttl_expired"), T0)
    assert states([fired]) == [(INACTIVE, FIRING)]
    assert "cause" not in fired.alert.labels  # `by` keeps the identity stable
    assert ev.observe(status(1.0), T0 + 5) != []  # warn is below fail: resolved
    assert ev.active() == []


def test_health_fail_stays_firing_without_a_quiet_period() -> None:
    ev = Evaluator([health()])
    ev.observe(status(2.0), T0)
    assert ev.tick(T0 + 86_400) == []
    assert len(ev.active()) == 1


def finding(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "name": "NPlusOne",
        "signal": "n_plus_one",
        "kind": RuleKind.FINDING,
        "quiet_for_s": 600.0,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def n_plus_one(count: float = 12) -> SignalObserved:
    return signal(
        "n_plus_one",
        count,
        {"application": "shop", "fingerprint": "abc"},
        source=SignalSource.QUERIES,
        kind=SignalKind.FINDING,
    )


def test_finding_without_condition_fires_on_presence_and_resolves_after_quiet_for() -> None:
    ev = Evaluator([finding()])
    (fired,) = ev.observe(n_plus_one(), T0)
    assert states([fired]) == [(INACTIVE, FIRING)]
    assert ev.observe(n_plus_one(0), T0 + 300) == []  # any value is a finding
    assert ev.tick(T0 + 899) == []  # quiet since +300
    (resolved,) = ev.tick(T0 + 900)
    assert states([resolved]) == [(FIRING, RESOLVED)]
    assert resolved.alert.resolved_at == T0 + 900


def test_finding_for_elapses_on_tick_while_the_finding_holds() -> None:
    ev = Evaluator([finding(for_s=120.0)])
    assert states(ev.observe(n_plus_one(), T0)) == [(INACTIVE, PENDING)]
    assert ev.tick(T0 + 119) == []
    assert states(ev.tick(T0 + 120)) == [(PENDING, FIRING)]


def test_finding_pending_is_dropped_after_quiet_for() -> None:
    ev = Evaluator([finding(for_s=900.0)])
    ev.observe(n_plus_one(), T0)
    assert states(ev.tick(T0 + 600)) == [(PENDING, INACTIVE)]


def test_finding_keep_firing_for_after_quiet_period() -> None:
    ev = Evaluator([finding(keep_firing_for_s=60.0)])
    ev.observe(n_plus_one(), T0)
    assert ev.tick(T0 + 600) == []  # quiet: keep firing for another 60 s
    assert ev.tick(T0 + 659) == []
    assert states(ev.tick(T0 + 660)) == [(FIRING, RESOLVED)]


def test_finding_renewed_during_keep_firing_clears_it() -> None:
    ev = Evaluator([finding(keep_firing_for_s=60.0)])
    ev.observe(n_plus_one(), T0)
    ev.tick(T0 + 600)
    ev.observe(n_plus_one(), T0 + 630)
    assert ev.active()[0].keep_firing_since is None
    assert ev.tick(T0 + 700) == []


# -- tick for threshold rules ----------------------------------------------------------


def test_tick_ends_an_elapsed_keep_firing_for_window_without_new_signals() -> None:
    rule = Rule(name="Hot", signal="cpu", op=Comparison.GT, threshold=0.9, keep_firing_for_s=60.0)
    ev = Evaluator([rule])
    ev.observe(signal("cpu", 1.0), T0)
    assert ev.observe(signal("cpu", 0.1), T0 + 10) == []
    assert ev.tick(T0 + 69) == []
    (resolved,) = ev.tick(T0 + 70)
    assert states([resolved]) == [(FIRING, RESOLVED)]


def test_tick_leaves_threshold_alerts_to_their_signals() -> None:
    rule = Rule(name="Hot", signal="cpu", op=Comparison.GT, threshold=0.9, for_s=60.0)
    ev = Evaluator([rule])
    ev.observe(signal("cpu", 1.0), T0)
    assert ev.tick(T0 + 3600) == []  # no evidence the condition still holds
    assert ev.active()[0].state is PENDING


def test_tick_works_for_restored_alerts_by_rule_name() -> None:
    rule = finding()
    restored = AlertInstance(
        fingerprint="fp",
        rule="NPlusOne",
        labels={"alertname": "NPlusOne"},
        annotations={},
        state=FIRING,
        value=3.0,
        active_at=T0,
        fired_at=T0,
        resolved_at=None,
        last_true_at=T0,
    )
    ev = Evaluator([rule])
    ev.restore([restored])
    assert states(ev.tick(T0 + 600)) == [(FIRING, RESOLVED)]


def test_rule_invariants() -> None:
    with pytest.raises(ValueError, match="threshold"):
        Rule(name="X", signal="s")
    with pytest.raises(ValueError, match="absent_for"):
        Rule(name="X", signal="s", kind=RuleKind.ABSENCE)
    with pytest.raises(ValueError, match="window"):
        Rule(name="X", signal="s", kind=RuleKind.RATE, threshold=1.0)
    assert Rule(name="X", signal="s", kind=RuleKind.FINDING).holds(-5.0)


def test_rule_labels_are_templated_with_the_signal_labels_and_value() -> None:
    rule = Rule(
        name="Hot",
        signal="cpu",
        op=Comparison.GT,
        threshold=0.9,
        labels={"team": "{{ labels.instance | upper }}-oncall", "band": "{{ value > 5 }}"},
    )
    ev = Evaluator([rule])
    (fired,) = ev.observe(signal("cpu", 7.0), T0)
    assert fired.alert.labels["team"] == "A-oncall"
    assert fired.alert.labels["band"] == "True"
    assert fired.alert.fingerprint == fingerprint(dict(fired.alert.labels))


def test_absence_labels_are_templated_too() -> None:
    ev = Evaluator([absence(labels={"who": "{{ labels.instance }}"})])
    ev.observe(signal("heartbeat"), T0)
    (fired,) = ev.tick(T0 + 60)
    assert fired.alert.labels["who"] == "a"
    assert states(ev.observe(signal("heartbeat"), T0 + 61)) == [(FIRING, RESOLVED)]
