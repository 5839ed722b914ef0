"""The promtool-style rule test runner: expanding notation, simulated time, diffs."""

from __future__ import annotations

import math
import textwrap

import pytest

from alert_engine.core.rules import Rule, parse_rules
from alert_engine.core.ruletest import RuleTestError, expand, rule_files, run_tests


@pytest.mark.parametrize(
    ("notation", "expected"),
    [
        ("1", [1.0]),
        ("1 2 3", [1.0, 2.0, 3.0]),
        ("1+1x3", [1.0, 2.0, 3.0, 4.0]),
        ("10-2x2", [10.0, 8.0, 6.0]),
        ("-1+0.5x2", [-1.0, -0.5, 0.0]),
        ("5x2", [5.0, 5.0, 5.0]),
        ("0 _ 5 stale 5", [0.0, None, 5.0, None, 5.0]),
        ("_x3 1", [None, None, None, 1.0]),
        ("1e3", [1000.0]),
        ("", []),
    ],
)
def test_expanding_notation(notation: str, expected: list[float | None]) -> None:
    assert expand(notation) == expected


def test_expanding_notation_special_values_and_errors() -> None:
    (inf,) = expand("Inf")
    assert math.isinf(inf or 0.0)
    with pytest.raises(ValueError, match="bad sample 'abc'"):
        expand("1 abc")
    with pytest.raises(ValueError, match="more than"):
        expand("0x200000")


RULES = """
groups:
  - name: t
    rules:
      - alert: Hot
        signal: cpu
        op: ">"
        threshold: 0.9
        for: 2m
        labels: {severity: page}
        annotations: {summary: "{{ labels.host }} at {{ value }}"}
      - alert: Silent
        kind: absence
        signal: heartbeat
        absent_for: 3m
"""


def load(name: str) -> list[Rule]:
    assert name == "rules.yml"
    return parse_rules(RULES, name)


def run(tests: str) -> list[tuple[str, list[str]]]:
    text = "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n" + textwrap.indent(
        textwrap.dedent(tests), "  "
    )
    return [(r.name, r.failures) for r in run_tests(text, "t.yml", load)]


HOT = """
- name: hot
  input_signals:
    - name: cpu
      labels: {host: a}
      values: "0.5 1x5"
  alert_rule_test:
    - eval_time: 2m
      alertname: Hot
      exp_alerts: []
    - eval_time: 3m
      alertname: Hot
      exp_alerts:
        - exp_labels: {host: a, severity: page}
          exp_annotations: {summary: "a at 1.0"}
"""


def test_a_passing_test() -> None:
    assert run(HOT) == [("hot", [])]


def test_a_failing_test_says_when_and_shows_a_diff() -> None:
    ((name, failures),) = run(HOT.replace("a at 1.0", "a at 2.0"))
    assert name == "hot"
    (failure,) = failures
    assert failure.startswith("alertname Hot, eval_time 3m:")
    assert "expected 1 firing, got 1" in failure
    assert '-{"labels": {"alertname": "Hot", "host": "a", "severity": "page"}, ' in failure
    assert '"annotations": {"summary": "a at 2.0"}' in failure
    assert '"annotations": {"summary": "a at 1.0"}' in failure


def test_unexpected_alerts_fail_and_annotations_are_optional() -> None:
    tests = """
    - input_signals:
        - {name: cpu, labels: {host: a}, values: "1x3"}
        - {name: cpu, labels: {host: b}, values: "1x3"}
      alert_rule_test:
        - eval_time: 3m
          alertname: Hot
          exp_alerts:
            - exp_labels: {host: a, severity: page}
    """
    ((name, (failure,)),) = run(tests)
    assert name == "tests[0]"
    assert '+{"labels": {"alertname": "Hot", "host": "b", "severity": "page"}}' in failure


def test_absence_rules_run_on_the_simulated_tick() -> None:
    tests = """
    - interval: 30s
      input_signals:
        - {name: heartbeat, labels: {instance: x}, values: "1x3 _x20"}
      alert_rule_test:
        - eval_time: 4m
          alertname: Silent
          exp_alerts: []
        - eval_time: 4m30s
          alertname: Silent
          exp_alerts:
            - exp_labels: {instance: x}
    """
    assert run(tests) == [("tests[0]", [])]


def test_a_never_seen_series_is_absent_from_time_zero() -> None:
    tests = """
    - alert_rule_test:
        - eval_time: 3m
          alertname: Silent
          exp_alerts:
            - exp_labels: {}
    """
    assert run(tests) == [("tests[0]", [])]


def test_unknown_alertname_and_bad_values_are_failures() -> None:
    tests = """
    - alert_rule_test:
        - {eval_time: 1m, alertname: Nope, exp_alerts: []}
    - input_signals:
        - {name: cpu, values: "1 x"}
    """
    (unknown, bad) = run(tests)
    assert unknown[1] == ["alertname 'Nope': no such rule in the rule files"]
    assert "input_signals[0] (cpu): bad sample 'x'" in bad[1][0]


def test_malformed_test_files_are_errors() -> None:
    with pytest.raises(RuleTestError, match="not valid YAML"):
        run_tests("a: [", "t.yml", load)
    with pytest.raises(RuleTestError, match=r"t.yml: .*rule_files"):
        run_tests("tests: []", "t.yml", load)
    with pytest.raises(RuleTestError, match="evaluation_interval"):
        run_tests("rule_files: [rules.yml]\nevaluation_interval: 0s\ntests: []", "t.yml", load)
    assert rule_files("rule_files: [a.yml, b.yml]\ntests: []", "t.yml") == ["a.yml", "b.yml"]


def test_an_absurd_number_of_evaluations_is_refused() -> None:
    tests = """
    - alert_rule_test:
        - {eval_time: 10y, alertname: Hot, exp_alerts: []}
    """
    ((_, (failure,)),) = run(tests)
    assert "more than 1000000 evaluations of 1m" in failure
