"""Rule evaluation in simulated time: inactive → pending → firing → resolved."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from alert_engine.core.evaluation import AlertInstance, Evaluator, Transition, alert_labels
from alert_engine.core.rules import Comparison, Rule
from alert_engine.core.templating import render
from alert_engine.core.validation import MAX_LABEL_VALUE, text_problem
from opsmesh.events.alerts import AlertState
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.labels import fingerprint

T0 = 1_700_000_000.0


def rule(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "name": "CpuHot",
        "signal": "cpu",
        "op": Comparison.GT,
        "threshold": 0.9,
    }
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def signal(
    value: float,
    *,
    name: str = "cpu",
    labels: Mapping[str, str] | None = None,
    stats: Mapping[str, float] | None = None,
) -> SignalObserved:
    return SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name=name,
        subject=name,
        labels=dict(labels if labels is not None else {"host": "a"}),
        value=value,
        stats=dict(stats or {}),
        observed_at=T0,
    )


HOT, COOL = 0.95, 0.5


def states(transitions: list[Transition]) -> list[tuple[AlertState, AlertState]]:
    return [(t.previous, t.alert.state) for t in transitions]


def test_inactive_to_pending_to_firing_with_for() -> None:
    ev = Evaluator([rule(for_s=60)])
    first = ev.observe(signal(HOT), T0)
    assert states(first) == [(AlertState.INACTIVE, AlertState.PENDING)]
    pending = first[0].alert
    assert (pending.active_at, pending.fired_at, pending.last_true_at) == (T0, None, T0)

    assert ev.observe(signal(HOT), T0 + 30) == []
    assert ev.active()[0].state is AlertState.PENDING
    assert ev.observe(signal(HOT), T0 + 59.9) == []

    fired = ev.observe(signal(HOT), T0 + 60)
    assert states(fired) == [(AlertState.PENDING, AlertState.FIRING)]
    alert = fired[0].alert
    assert (alert.active_at, alert.fired_at, fired[0].at) == (T0, T0 + 60, T0 + 60)

    assert ev.observe(signal(HOT), T0 + 120) == []
    assert ev.active()[0].state is AlertState.FIRING


def test_pending_returns_to_inactive_when_condition_stops_before_for() -> None:
    ev = Evaluator([rule(for_s=60)])
    ev.observe(signal(HOT), T0)
    dropped = ev.observe(signal(COOL), T0 + 30)
    assert states(dropped) == [(AlertState.PENDING, AlertState.INACTIVE)]
    assert dropped[0].alert.value == COOL
    assert ev.active() == []
    # The next true evaluation starts a new pending period from scratch.
    again = ev.observe(signal(HOT), T0 + 40)
    assert states(again) == [(AlertState.INACTIVE, AlertState.PENDING)]
    assert again[0].alert.active_at == T0 + 40
    assert ev.observe(signal(HOT), T0 + 90) == []
    assert states(ev.observe(signal(HOT), T0 + 100)) == [(AlertState.PENDING, AlertState.FIRING)]


def test_firing_to_resolved() -> None:
    ev = Evaluator([rule()])
    ev.observe(signal(HOT), T0)
    resolved = ev.observe(signal(COOL), T0 + 10)
    assert states(resolved) == [(AlertState.FIRING, AlertState.RESOLVED)]
    alert = resolved[0].alert
    assert (alert.fired_at, alert.resolved_at, alert.value) == (T0, T0 + 10, COOL)
    assert ev.active() == []
    assert ev.observe(signal(COOL), T0 + 20) == []


def test_keep_firing_for_holds_firing_within_the_window_then_resolves() -> None:
    ev = Evaluator([rule(keep_firing_for_s=60)])
    ev.observe(signal(HOT), T0)
    ev.observe(signal(HOT), T0 + 10)
    assert ev.observe(signal(COOL), T0 + 20) == []  # first false: keeps firing from here
    assert ev.observe(signal(COOL), T0 + 79.9) == []
    (kept,) = ev.active()
    assert kept.state is AlertState.FIRING
    assert kept.value == COOL
    assert kept.keep_firing_since == T0 + 20
    resolved = ev.observe(signal(COOL), T0 + 80)
    assert states(resolved) == [(AlertState.FIRING, AlertState.RESOLVED)]
    assert resolved[0].alert.resolved_at == T0 + 80


def test_keep_firing_for_window_restarts_when_condition_holds_again() -> None:
    ev = Evaluator([rule(keep_firing_for_s=60)])
    ev.observe(signal(HOT), T0)
    ev.observe(signal(COOL), T0 + 30)
    assert ev.observe(signal(HOT), T0 + 50) == []  # still the same firing alert
    assert ev.observe(signal(COOL), T0 + 100) == []  # a new window starts at T0 + 100
    assert ev.observe(signal(COOL), T0 + 159) == []
    assert states(ev.observe(signal(COOL), T0 + 160)) == [(AlertState.FIRING, AlertState.RESOLVED)]


def test_keep_firing_for_does_not_delay_a_pending_alert_dropping() -> None:
    ev = Evaluator([rule(for_s=60, keep_firing_for_s=600)])
    ev.observe(signal(HOT), T0)
    assert states(ev.observe(signal(COOL), T0 + 1)) == [(AlertState.PENDING, AlertState.INACTIVE)]


def test_for_zero_fires_immediately() -> None:
    ev = Evaluator([rule(for_s=0)])
    fired = ev.observe(signal(HOT), T0)
    assert states(fired) == [(AlertState.INACTIVE, AlertState.FIRING)]
    assert fired[0].alert.fired_at == T0
    assert fired[0].alert.active_at == T0


def test_false_condition_without_an_alert_does_nothing() -> None:
    ev = Evaluator([rule()])
    assert ev.observe(signal(COOL), T0) == []
    assert ev.active() == []


def test_signals_for_other_names_are_ignored() -> None:
    ev = Evaluator([rule()])
    assert ev.observe(signal(HOT, name="memory"), T0) == []


def test_matchers_select_signals() -> None:
    ev = Evaluator([rule(matchers={"env": "prod"})])
    assert ev.observe(signal(HOT, labels={"env": "dev"}), T0) == []
    assert ev.observe(signal(HOT, labels={"host": "a"}), T0) == []
    fired = ev.observe(signal(HOT, labels={"env": "prod", "host": "a"}), T0)
    assert len(fired) == 1


def test_stat_is_compared_instead_of_value() -> None:
    ev = Evaluator([rule(stat="max")])
    # value is cool but the window max is hot
    fired = ev.observe(signal(COOL, stats={"max": HOT}), T0)
    assert states(fired) == [(AlertState.INACTIVE, AlertState.FIRING)]
    assert fired[0].alert.value == HOT
    resolved = ev.observe(signal(HOT, stats={"max": COOL}), T0 + 10)
    assert states(resolved) == [(AlertState.FIRING, AlertState.RESOLVED)]


def test_missing_stat_is_not_an_evaluation() -> None:
    ev = Evaluator([rule(stat="max")])
    ev.observe(signal(COOL, stats={"max": HOT}), T0)
    # A signal without the stat neither resolves nor changes the alert.
    assert ev.observe(signal(COOL), T0 + 10) == []
    assert ev.active()[0].state is AlertState.FIRING


def test_each_label_set_is_its_own_alert() -> None:
    ev = Evaluator([rule()])
    a = ev.observe(signal(HOT, labels={"host": "a"}), T0)
    b = ev.observe(signal(HOT, labels={"host": "b"}), T0)
    assert a[0].alert.fingerprint != b[0].alert.fingerprint
    assert len(ev.active()) == 2
    resolved = ev.observe(signal(COOL, labels={"host": "a"}), T0 + 1)
    assert [t.alert.labels["host"] for t in resolved] == ["a"]
    assert [a.labels["host"] for a in ev.active()] == ["b"]


def test_several_rules_on_one_signal() -> None:
    ev = Evaluator([rule(name="Warm", threshold=0.5), rule(name="Hot", threshold=0.9)])
    assert {t.alert.rule for t in ev.observe(signal(0.7), T0)} == {"Warm"}
    assert {t.alert.rule for t in ev.observe(signal(0.95), T0 + 1)} == {"Hot"}
    assert {t.alert.rule for t in ev.observe(signal(0.1), T0 + 2)} == {"Warm", "Hot"}


def test_alert_labels_are_signal_labels_plus_rule_labels_plus_alertname() -> None:
    ev = Evaluator([rule(labels={"severity": "page", "env": "override"})])
    (t,) = ev.observe(signal(HOT, labels={"host": "a", "env": "prod", "alertname": "x"}), T0)
    expected = {"host": "a", "env": "override", "severity": "page", "alertname": "CpuHot"}
    assert dict(t.alert.labels) == expected
    assert t.alert.fingerprint == fingerprint(expected)
    assert t.alert.rule == "CpuHot"


def test_annotations_are_templated_with_labels_and_value() -> None:
    ev = Evaluator(
        [
            rule(
                annotations={
                    "summary": "{{ labels.host }} at {{ '%.2f' | format(value) }}",
                    "static": "no template here",
                    "rule_label": "{{ labels.severity }}",
                },
                labels={"severity": "page"},
            )
        ]
    )
    (t,) = ev.observe(signal(0.9512), T0)
    assert dict(t.alert.annotations) == {
        "summary": "a at 0.95",
        "static": "no template here",
        "rule_label": "page",
    }


def test_annotations_follow_the_latest_value() -> None:
    ev = Evaluator([rule(annotations={"v": "{{ value }}"}, for_s=10)])
    ev.observe(signal(0.95), T0)
    (t,) = ev.observe(signal(0.99), T0 + 10)
    assert t.alert.annotations["v"] == "0.99"


def test_template_error_renders_an_error_string() -> None:
    ev = Evaluator(
        [
            rule(
                annotations={
                    "undefined": "{{ labels.nope }}",
                    "syntax": "{{ value ",
                    "runtime": "{{ value / 0 }}",
                    "type": "{{ value + 'x' }}",
                    "fine": "{{ labels.host }}",
                }
            )
        ]
    )
    (t,) = ev.observe(signal(HOT), T0)
    notes = t.alert.annotations
    assert t.alert.state is AlertState.FIRING
    for key in ("undefined", "syntax", "runtime", "type"):
        assert notes[key].startswith("<template error: "), key
    assert "ZeroDivisionError" in notes["runtime"]
    assert notes["fine"] == "a"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ labels.__class__ }}",
        "{{ value.__class__.__base__ }}",
        "{{ labels.update({'alertname': 'x'}) }}",
        "{{ labels.pop('host') }}",
    ],
)
def test_sandbox_refuses_python_internals_and_mutation(source: str) -> None:
    ev = Evaluator([rule(annotations={"x": source})])
    (t,) = ev.observe(signal(HOT), T0)
    rendered = t.alert.annotations["x"]
    assert rendered.startswith("<template error: access to attribute ")
    assert rendered.endswith("is unsafe.>")
    assert "<class" not in rendered
    assert dict(t.alert.labels) == {"host": "a", "alertname": "CpuHot"}


def test_sandbox_range_limit_renders_an_error() -> None:
    ev = Evaluator([rule(annotations={"x": "{{ range(10**9) | list | length }}"})])
    (t,) = ev.observe(signal(HOT), T0)
    assert t.alert.annotations["x"].startswith("<template error: template budget exceeded: range")


def test_long_template_output_is_truncated() -> None:
    ev = Evaluator([rule(annotations={"x": "{% for i in range(5000) %}ab{% endfor %}"})])
    (t,) = ev.observe(signal(HOT), T0)
    assert len(t.alert.annotations["x"]) == 4096


def instance(state: AlertState, *, active_at: float, **fields: object) -> AlertInstance:
    labels = {"host": "a", "alertname": "CpuHot"}
    base: dict[str, object] = {
        "fingerprint": fingerprint(labels),
        "rule": "CpuHot",
        "labels": labels,
        "annotations": {},
        "state": state,
        "value": HOT,
        "active_at": active_at,
        "fired_at": None,
        "resolved_at": None,
        "last_true_at": active_at,
    }
    base.update(fields)
    return AlertInstance(**base)  # type: ignore[arg-type]


def test_restore_pending_continues_its_for_period() -> None:
    ev = Evaluator([rule(for_s=60)])
    ev.restore([instance(AlertState.PENDING, active_at=T0)])
    assert ev.observe(signal(HOT), T0 + 30) == []
    fired = ev.observe(signal(HOT), T0 + 60)
    assert states(fired) == [(AlertState.PENDING, AlertState.FIRING)]
    assert fired[0].alert.active_at == T0


def test_restore_firing_resolves_on_the_next_false_evaluation() -> None:
    ev = Evaluator([rule()])
    ev.restore([instance(AlertState.FIRING, active_at=T0, fired_at=T0)])
    assert ev.observe(signal(HOT), T0 + 5) == []  # no second "fired"
    resolved = ev.observe(signal(COOL), T0 + 10)
    assert states(resolved) == [(AlertState.FIRING, AlertState.RESOLVED)]
    assert resolved[0].alert.fired_at == T0


def test_restore_keeps_keep_firing_for_window() -> None:
    ev = Evaluator([rule(keep_firing_for_s=60)])
    ev.restore(
        [
            instance(
                AlertState.FIRING,
                active_at=T0,
                fired_at=T0,
                last_true_at=T0 + 10,
                keep_firing_since=T0 + 20,
            )
        ]
    )
    assert ev.observe(signal(COOL), T0 + 79) == []
    assert states(ev.observe(signal(COOL), T0 + 80)) == [(AlertState.FIRING, AlertState.RESOLVED)]


def test_restore_ignores_inactive_and_resolved() -> None:
    ev = Evaluator([rule()])
    ev.restore(
        [
            instance(AlertState.RESOLVED, active_at=T0, resolved_at=T0 + 1),
            instance(AlertState.INACTIVE, active_at=T0, fingerprint="other"),
        ]
    )
    assert ev.active() == []
    assert ev.observe(signal(COOL), T0 + 10) == []


def test_rules_property_is_a_copy() -> None:
    rules = [rule()]
    ev = Evaluator(rules)
    ev.rules.clear()
    assert ev.rules == rules


def test_keep_firing_window_changes_are_reported_for_persistence() -> None:
    ev = Evaluator([rule(keep_firing_for_s=60)])
    ev.observe(signal(HOT), T0)
    assert ev.take_updates() == []
    ev.observe(signal(COOL), T0 + 10)
    (opened,) = ev.take_updates()
    assert opened.keep_firing_since == T0 + 10
    ev.observe(signal(COOL), T0 + 20)
    assert ev.take_updates() == [], "an open window is reported once"
    ev.observe(signal(HOT), T0 + 30)
    (closed,) = ev.take_updates()
    assert closed.keep_firing_since is None


@pytest.mark.parametrize(
    "source", ['{{ "x" * 10**7 }}', "{{ [1] * 1000000 }}", "{{ 2 ** 100000 }}"]
)
def test_templates_cannot_build_huge_values(source: str) -> None:
    out = render(source, {}, 1.0)
    assert out.startswith("<template error:")
    assert len(out) < 300


def test_rendered_labels_and_annotations_are_always_storable() -> None:
    """A template can print NUL ('%c' % 0) or build a long text; the alert it makes must
    still be stored and fit the events, so the output is mended rather than refused."""
    rule = Rule(
        name="A",
        signal="s",
        threshold=1.0,
        labels={"nul": "{{ '%c' % 0 }}", "long": "{{ 'z' * 5000 }}"},
    )
    labels = alert_labels(rule, {"host": "h"}, 2.0)
    assert labels["nul"] == "\ufffd"
    assert len(labels["long"]) == MAX_LABEL_VALUE
    assert all(text_problem(v) is None for v in labels.values())
