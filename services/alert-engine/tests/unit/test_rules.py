"""Rule files: a valid file becomes Rules; every error says where it is."""

from __future__ import annotations

import textwrap

import pytest

from alert_engine.core.rules import (
    Comparison,
    Rule,
    RuleFileError,
    RuleKind,
    parse_rules,
)
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource

SOURCE = "rules/api.yml"

VALID = """
groups:
  - name: api
    rules:
      - alert: HighLatency
        signal: http_latency_p99
        op: ">"
        threshold: 0.5
        matchers: {service: checkout}
        stat: max
        for: 5m
        keep_firing_for: 1m30s
        labels: {severity: page}
        annotations:
          summary: "p99 is {{ value }}"
      - alert: NoTraffic
        signal: http_requests
        op: "=="
        threshold: 0
  - name: db
    rules:
      - alert: HighLatency
        signal: db_latency
        op: ">="
        threshold: 2
        for: 30
"""


def rule_file(**overrides: object) -> str:
    """A one-group, one-rule file whose rule has ``overrides`` applied (None removes)."""
    fields: dict[str, object] = {
        "alert": "CpuHot",
        "signal": "cpu",
        "op": '">"',
        "threshold": 0.9,
    }
    fields.update(overrides)
    lines = [f"        {k}: {v}" for k, v in fields.items() if v is not None]
    lines[0] = "      - " + lines[0].lstrip()
    return "groups:\n  - name: infra\n    rules:\n" + "\n".join(lines) + "\n"


def parse_error(text: str) -> str:
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, SOURCE)
    return str(info.value)


def signal(name: str = "cpu", value: float = 1.0, **labels: str) -> SignalObserved:
    return SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name=name,
        subject=name,
        labels=labels,
        value=value,
        stats={"max": 7.0},
        observed_at=0.0,
    )


def test_valid_file() -> None:
    rules = parse_rules(VALID, SOURCE)
    assert [(r.group, r.name) for r in rules] == [
        ("api", "HighLatency"),
        ("api", "NoTraffic"),
        ("db", "HighLatency"),
    ]
    first = rules[0]
    assert first == Rule(
        name="HighLatency",
        signal="http_latency_p99",
        op=Comparison.GT,
        threshold=0.5,
        matchers={"service": "checkout"},
        stat="max",
        for_s=300.0,
        keep_firing_for_s=90.0,
        labels={"severity": "page"},
        annotations={"summary": "p99 is {{ value }}"},
        group="api",
    )
    defaults = rules[1]
    assert (defaults.for_s, defaults.keep_firing_for_s, defaults.stat) == (0.0, 0.0, None)
    assert (defaults.matchers, defaults.labels, defaults.annotations) == ({}, {}, {})
    assert rules[2].for_s == 30.0
    assert rules[2].op is Comparison.GE


def test_the_same_rule_name_in_two_groups_is_allowed() -> None:
    names = [r.name for r in parse_rules(VALID, SOURCE)]
    assert names.count("HighLatency") == 2


@pytest.mark.parametrize(
    ("op", "value", "holds"),
    [
        (">", 2.0, True),
        (">", 1.0, False),
        ("<", 0.5, True),
        ("<", 1.0, False),
        (">=", 1.0, True),
        ("<=", 1.0, True),
        ("<=", 1.5, False),
        ("==", 1.0, True),
        ("==", 1.1, False),
        ("!=", 1.1, True),
        ("!=", 1.0, False),
    ],
)
def test_comparison_operators(op: str, value: float, holds: bool) -> None:
    (rule,) = parse_rules(rule_file(op=f'"{op}"', threshold=1.0))
    assert rule.holds(value) is holds


def test_applies_to_matches_signal_name_and_every_matcher() -> None:
    (rule,) = parse_rules(rule_file(matchers="{env: prod, region: eu}"))
    assert rule.applies_to(signal(env="prod", region="eu", extra="x"))
    assert not rule.applies_to(signal(env="prod"))
    assert not rule.applies_to(signal(env="dev", region="eu"))
    assert not rule.applies_to(signal("memory", env="prod", region="eu"))


def test_observed_value_uses_the_stat_when_set() -> None:
    (plain,) = parse_rules(rule_file())
    (with_stat,) = parse_rules(rule_file(stat="max"))
    (missing_stat,) = parse_rules(rule_file(stat="p99"))
    assert plain.observed_value(signal(value=1.0)) == 1.0
    assert with_stat.observed_value(signal(value=1.0)) == 7.0
    assert missing_stat.observed_value(signal(value=1.0)) is None


def test_default_source_name() -> None:
    with pytest.raises(RuleFileError, match=r"^<rules>: "):
        parse_rules("groups: 3")


def test_bad_yaml_names_file_and_line() -> None:
    message = parse_error("groups:\n  - name: [unclosed\n")
    assert message.startswith(f"{SOURCE}: not valid YAML")
    assert "line 2" in message


def test_top_level_must_be_a_mapping() -> None:
    message = parse_error("- just\n- a list\n")
    assert message.startswith(f"{SOURCE}: ")
    assert "object" in message


def test_unknown_field_is_located() -> None:
    message = parse_error(rule_file(severity="page"))
    for part in (SOURCE, "groups[0]", "(infra)", "rules[0]", "(CpuHot)", "severity"):
        assert part in message


def test_unknown_field_at_group_level_is_located() -> None:
    text = "groups:\n  - name: infra\n    interval: 1m\n    rules: []\n"
    message = parse_error(text)
    for part in (SOURCE, "groups[0]", "(infra)", "interval"):
        assert part in message
    assert "rules[" not in message


def test_bad_op_is_located() -> None:
    message = parse_error(rule_file(op='"=~"'))
    for part in (SOURCE, "groups[0]", "(infra)", "rules[0]", "(CpuHot)", "op", "=~"):
        assert part in message


def test_wrong_type_is_located() -> None:
    message = parse_error(rule_file(threshold="high"))
    for part in (SOURCE, "(infra)", "(CpuHot)", "threshold"):
        assert part in message


def test_missing_required_field_is_located_by_index() -> None:
    message = parse_error(rule_file(signal=None))
    for part in (SOURCE, "groups[0]", "(infra)", "rules[0]", "(CpuHot)", "signal"):
        assert part in message


def test_invalid_alert_name_is_rejected() -> None:
    message = parse_error(rule_file(alert='"cpu hot"'))
    for part in (SOURCE, "(infra)", "rules[0]", "alert"):
        assert part in message


def test_error_in_the_second_group_points_there() -> None:
    text = VALID + "  - name: late\n    rules:\n      - alert: Broken\n        signal: s\n"
    message = parse_error(text)
    for part in ("groups[2]", "(late)", "rules[0]", "(Broken)", "op"):
        assert part in message


@pytest.mark.parametrize("field", ["for", "keep_firing_for"])
def test_bad_duration_is_located(field: str) -> None:
    message = parse_error(rule_file(**{field: '"5 minutes"'}))
    for part in (SOURCE, "groups[0]", "(infra)", "rules[0]", "(CpuHot)", "5 minutes"):
        assert part in message


def test_negative_duration_is_located() -> None:
    message = parse_error(rule_file(**{"for": -5}))
    for part in (SOURCE, "(infra)", "(CpuHot)", "negative"):
        assert part in message


def test_duplicate_rule_in_a_group_is_located() -> None:
    text = textwrap.dedent(
        """
        groups:
          - name: infra
            rules:
              - {alert: CpuHot, signal: cpu, op: ">", threshold: 0.9}
              - {alert: DiskFull, signal: disk, op: ">", threshold: 0.9}
              - {alert: CpuHot, signal: cpu, op: ">", threshold: 0.95}
        """
    )
    message = parse_error(text)
    for part in (SOURCE, "groups[0]", "(infra)", "rules[2]", "(CpuHot)", "duplicate"):
        assert part in message


# -- kinds ---------------------------------------------------------------------------

KINDS = """
groups:
  - name: kinds
    rules:
      - alert: NoHeartbeat
        kind: absence
        signal: heartbeat
        matchers: {env: prod}
        by: [service, instance]
        absent_for: 2m
      - alert: LagGrowing
        kind: rate
        signal: consumer_lag
        stat: last
        op: ">"
        threshold: 0
        window: 10m
        for: 5m
      - alert: NPlusOne
        kind: finding
        signal: n_plus_one
        quiet_for: 1h
      - alert: Unhealthy
        kind: finding
        signal: health_check_status
        op: ">="
        threshold: 2
"""


def test_each_kind_parses_with_its_fields() -> None:
    absence, rate, finding, health = parse_rules(KINDS, SOURCE)
    assert (absence.kind, absence.absent_for_s, absence.by) == (
        RuleKind.ABSENCE,
        120.0,
        ("service", "instance"),
    )
    assert (rate.kind, rate.window_s, rate.stat, rate.threshold, rate.for_s) == (
        RuleKind.RATE,
        600.0,
        "last",
        0.0,
        300.0,
    )
    assert (finding.kind, finding.quiet_for_s, finding.threshold) == (
        RuleKind.FINDING,
        3600.0,
        None,
    )
    assert (health.quiet_for_s, health.op, health.threshold) == (None, Comparison.GE, 2.0)
    assert health.by is None


def test_kind_defaults_to_threshold() -> None:
    (rule,) = parse_rules(rule_file())
    assert rule.kind is RuleKind.THRESHOLD


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"kind": "absence", "op": None, "threshold": None}, "`absent_for`: required"),
        ({"kind": "rate"}, "`window`: required"),
        ({"threshold": None}, "`threshold`: required for kind threshold"),
        ({"window": "5m"}, "`window`: not used by kind threshold"),
        ({"kind": "absence", "absent_for": "1m"}, "`op`: not used by kind absence"),
        ({"kind": "finding", "threshold": None}, "`op`/`threshold`: give both or neither"),
        ({"kind": "rate", "window": "0s"}, "`window`: must be more than 0s"),
        ({"kind": "finding", "quiet_for": "soon"}, "`quiet_for`: invalid duration"),
        (
            {
                "kind": "absence",
                "op": None,
                "threshold": None,
                "absent_for": "1h",
                "for": "5m",
                "forget_after": "1h",
            },
            "`forget_after`: must be longer than absent_for + for",
        ),
        ({"forget_after": "1d"}, "`forget_after`: not used by kind threshold"),
        ({"kind": "sometimes"}, "kind"),
        ({"for": "5 minutes"}, "`for`: invalid duration"),
        ({"annotations": '{summary: "{{ labels.x "}'}, "`annotations.summary`: template error"),
        ({"labels": '{team: "{% if %}"}'}, "`labels.team`: template error"),
    ],
)
def test_kind_field_errors_are_located(overrides: dict[str, object], expected: str) -> None:
    message = parse_error(rule_file(**overrides))
    assert message.startswith(f"{SOURCE}: groups[0] (infra) rules[0] (CpuHot): ")
    assert expected in message


def test_every_error_is_reported_not_just_the_first() -> None:
    text = rule_file(window="5m") + "      - alert: Two\n        signal: x\n        op: bad\n"
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, SOURCE)
    errors = info.value.errors
    assert len(errors) == 3
    assert "rules[0] (CpuHot): field `window`" in errors[0]
    assert "rules[1] (Two): field `op`: Invalid enum value 'bad'" in errors[1]
    assert "rules[1] (Two): field `threshold`: required for kind threshold" in errors[2]


def test_every_error_of_every_rule_and_group_in_one_run() -> None:
    text = textwrap.dedent(
        """
        groups:
          - name: one
            interval: 1m
            rules:
              - alert: "bad name"
                signal: cpu
                op: "=~"
                threshold: high
                severity: page
                for: soon
              - alert: NoSignal
                kind: rate
              - just a string
          - rules: []
          - name: two
            rules:
              - {alert: Fine, signal: cpu, op: ">", threshold: 1}
              - {alert: Late, signal: s, kind: absence, absent_for: 0s, window: 1m}
        extra: 1
        """
    )
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, SOURCE)
    errors = [e.removeprefix(f"{SOURCE}: ") for e in info.value.errors]
    expected = [
        "field `extra`: unknown field",
        "groups[0] (one): field `interval`: unknown field",
        "groups[1]: field `name`: required, a string",
        "groups[0] (one) rules[0] (bad name): field `severity`: unknown field",
        "groups[0] (one) rules[0] (bad name): field `alert`: Expected `str` matching regex",
        "groups[0] (one) rules[0] (bad name): field `op`: Invalid enum value '=~'",
        "groups[0] (one) rules[0] (bad name): field `threshold`: Expected `float | null`",
        "groups[0] (one) rules[0] (bad name): field `for`: invalid duration 'soon'",
        "groups[0] (one) rules[1] (NoSignal): field `signal`: required",
        "groups[0] (one) rules[1] (NoSignal): field `window`: required for kind rate",
        "groups[0] (one) rules[1] (NoSignal): field `op`: required for kind rate",
        "groups[0] (one) rules[1] (NoSignal): field `threshold`: required for kind rate",
        "groups[0] (one) rules[2]: expected a mapping, got str",
        "groups[2] (two) rules[1] (Late): field `window`: not used by kind absence",
        "groups[2] (two) rules[1] (Late): field `absent_for`: must be more than 0s",
    ]
    for part in expected:
        assert any(e.startswith(part) for e in errors), (part, errors)
    assert len(errors) == len(expected)


# -- hostile input ----------------------------------------------------------------------

_ONE = """
groups:
  - name: {group}
    rules:
      - alert: A
        signal: s
        op: ">"
        threshold: 1
        labels: {labels}
"""


@pytest.mark.parametrize(
    ("group", "labels", "message"),
    [
        ("g", '{team: "db\\0"}', r"groups\[0\]\.rules\[0\]\.labels\.team: contains a NUL"),
        ("g", '{team: "\\ud800"}', r"labels\.team: contains a lone UTF-16 surrogate"),
        ('"g\\x00"', "{}", r"groups\[0\]\.name: contains a NUL"),
        ("g", '{"bad-name": x}', r"rules\[0\] \(A\): .*labels"),
        ("g", "{" + "n" * 101 + ": x}", r"rules\[0\] \(A\): .*labels"),
        ('""', "{}", r"groups\[0\]"),
        ("g" * 201, "{}", r"groups\[0\]"),
    ],
)
def test_unstorable_text_and_bad_names_are_located(group: str, labels: str, message: str) -> None:
    with pytest.raises(RuleFileError, match=message):
        parse_rules(_ONE.format(group=group, labels=labels), source="body")


def test_the_api_refuses_yaml_aliases() -> None:
    """A few hundred bytes of aliases expand to 9^9 nodes on every walk."""
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\ngroups: []\n"
    with pytest.raises(RuleFileError, match="aliases"):
        parse_rules(bomb, source="body", aliases=False)
    anchored = _ONE.format(group="g", labels="&l {team: db}") + "      - alert: B\n"
    anchored += "        signal: s\n        op: '>'\n        threshold: 1\n        labels: *l\n"
    # Rule files (trusted) keep YAML's anchors.
    assert [r.labels for r in parse_rules(anchored)] == [{"team": "db"}, {"team": "db"}]
    with pytest.raises(RuleFileError, match="aliases"):
        parse_rules(anchored, aliases=False)
