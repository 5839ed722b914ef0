"""Rule unit tests in simulated time, after ``promtool test rules``.

A test file::

    rule_files: [default.yml]        # relative to the test file
    evaluation_interval: 1m          # how often tick() runs; default 1m
    tests:
      - name: error ratio pages      # optional; default "test <index>"
        interval: 1m                 # spacing of input samples; default evaluation_interval
        input_signals:
          - name: http_error_ratio   # the signal name
            labels: {service: checkout}
            source: metrics          # metrics | queries | health | mesh; default: the
                                     # catalogue's for a catalogued signal, else metrics
            kind: rollup             # rollup | finding | status; default from source
            values: "0.01x4 0.2x10"  # expanding notation, one sample per interval
            stats: {max: "1+1x14"}   # optional window statistics, aligned with values
        alert_rule_test:
          - eval_time: 10m
            alertname: HighErrorRate
            exp_alerts:              # the FIRING alerts of that name; [] for none
              - exp_labels: {service: checkout, severity: page}
                exp_annotations: {summary: "checkout error ratio is 20.0%"}

Expanding notation (as promtool): ``a`` one sample; ``a+bxn`` / ``a-bxn`` n+1 samples
from a in steps of b; ``axn`` n+1 samples of a; ``_`` no sample; ``_xn`` n samples
missing; ``stale`` no sample. Sample i is observed at ``i * interval``.

Simulated time starts at 0. At each instant (sample times, multiples of
evaluation_interval and every eval_time, in order) the runner observes that instant's
samples, then calls ``tick``, then checks the assertions due. ``exp_labels`` are the
alert's labels without ``alertname`` (added for you) and must match exactly.
``exp_annotations``, when given, must match exactly; when left out, annotations are not
compared (promtool always compares them; runbook URLs made that noisy).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import yaml

from alert_engine.core.evaluation import ALERTNAME, AlertInstance, Evaluator
from alert_engine.core.rules import Rule
from opsmesh import catalogue
from opsmesh.durations import format_duration, parse_duration
from opsmesh.events.alerts import AlertState
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource

Duration = str | float | int

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:Inf|inf|NaN|nan)"
_SERIES = re.compile(rf"^(?P<a>{_NUMBER})(?:(?P<sign>[-+])(?P<b>{_NUMBER}))?x(?P<n>\d+)$")
_MAX_SAMPLES = 100_000
_MAX_STEPS = 1_000_000  # evaluations per test; a typo like 1y at 1s must not hang the CLI

_DEFAULT_KIND = {
    SignalSource.METRICS: SignalKind.ROLLUP,
    SignalSource.QUERIES: SignalKind.FINDING,
    SignalSource.HEALTH: SignalKind.STATUS,
    SignalSource.MESH: SignalKind.STATUS,
}


class RuleTestError(ValueError):
    """A test file is malformed; the message says where."""


def expand(notation: str) -> list[float | None]:
    """Samples in promtool's expanding notation; None where there is no sample."""
    out: list[float | None] = []
    for token in notation.split():
        if token in ("_", "stale"):
            out.append(None)
        elif token.startswith("_x") and token[2:].isdigit():
            out.extend([None] * int(token[2:]))
        elif (match := _SERIES.match(token)) is not None:
            start, count = float(match["a"]), int(match["n"])
            step = float(match["b"]) if match["b"] is not None else 0.0
            if match["sign"] == "-":
                step = -step
            out.extend(start + step * i for i in range(count + 1))
        else:
            try:
                out.append(float(token))
            except ValueError:
                raise ValueError(f"bad sample {token!r} in {notation!r}") from None
        if len(out) > _MAX_SAMPLES:
            raise ValueError(f"more than {_MAX_SAMPLES} samples in {notation!r}")
    return out


# -- file format ---------------------------------------------------------------------


class _InputSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    values: str
    labels: dict[str, str] = {}
    source: SignalSource | None = None
    kind: SignalKind | None = None
    stats: dict[str, str] = {}


class _ExpAlertSpec(msgspec.Struct, forbid_unknown_fields=True):
    exp_labels: dict[str, str] = {}
    exp_annotations: dict[str, str] | None = None


class _AlertTestSpec(msgspec.Struct, forbid_unknown_fields=True):
    eval_time: Duration
    alertname: str
    exp_alerts: list[_ExpAlertSpec] = []


class _TestSpec(msgspec.Struct, forbid_unknown_fields=True):
    input_signals: list[_InputSpec] = []
    alert_rule_test: list[_AlertTestSpec] = []
    name: str | None = None
    interval: Duration | None = None


class _TestFileSpec(msgspec.Struct, forbid_unknown_fields=True):
    rule_files: list[str]
    tests: list[_TestSpec]
    evaluation_interval: Duration = "1m"


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _load(text: str, source: str) -> _TestFileSpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleTestError(f"{source}: not valid YAML: {exc}") from None
    try:
        return msgspec.convert(raw, _TestFileSpec)
    except msgspec.ValidationError as exc:
        raise RuleTestError(f"{source}: {exc}") from None


def rule_files(text: str, source: str) -> list[str]:
    """The rule files a test file names (as written; the caller resolves them)."""
    return list(_load(text, source).rule_files)


def run_tests(
    text: str, source: str, load_rules: Callable[[str], Iterable[Rule]]
) -> list[CaseResult]:
    """Run every test in the file; ``load_rules`` turns a ``rule_files`` entry into rules
    (and raises RuleFileError for a bad one)."""
    spec = _load(text, source)
    rules = [rule for path in spec.rule_files for rule in load_rules(path)]
    try:
        eval_interval = parse_duration(spec.evaluation_interval)
    except ValueError as exc:
        raise RuleTestError(f"{source}: evaluation_interval: {exc}") from None
    if eval_interval <= 0:
        raise RuleTestError(f"{source}: evaluation_interval must be more than 0s")
    return [
        _run_one(test, f"{source}: tests[{index}]", rules, eval_interval)
        for index, test in enumerate(spec.tests)
    ]


@dataclass(frozen=True, slots=True)
class _Check:
    at: float
    alertname: str
    expected: list[_ExpAlertSpec]


def _run_one(test: _TestSpec, where: str, rules: list[Rule], eval_interval: float) -> CaseResult:
    name = test.name or where.rsplit(": ", 1)[-1]
    try:
        interval = parse_duration(test.interval) if test.interval is not None else eval_interval
        if interval <= 0:
            raise ValueError("interval must be more than 0s")
        samples = _samples(test.input_signals, interval)
        checks = [
            _Check(parse_duration(c.eval_time), c.alertname, c.exp_alerts)
            for c in test.alert_rule_test
        ]
    except ValueError as exc:
        return CaseResult(name, [f"{where}: {exc}"])
    known = {r.name for r in rules}
    failures = [
        f"alertname {c.alertname!r}: no such rule in the rule files"
        for c in checks
        if c.alertname not in known
    ]
    end = max((c.at for c in checks), default=0.0)
    if end / eval_interval > _MAX_STEPS:
        failures.append(
            f"{where}: eval_time {format_duration(end)} is more than {_MAX_STEPS} "
            f"evaluations of {format_duration(eval_interval)}"
        )
        return CaseResult(name, failures)
    instants = {t for t in samples if t <= end} | {c.at for c in checks}
    steps = int(end // eval_interval)
    instants |= {i * eval_interval for i in range(steps + 1)}
    evaluator = Evaluator(rules)
    for now in sorted(instants):
        for signal in samples.get(now, ()):
            evaluator.observe(signal, now)
        evaluator.tick(now)
        for check in (c for c in checks if c.at == now and c.alertname in known):
            failure = _compare(check, evaluator.active())
            if failure is not None:
                failures.append(failure)
    return CaseResult(name, failures)


def _samples(inputs: list[_InputSpec], interval: float) -> dict[float, list[SignalObserved]]:
    by_time: dict[float, list[SignalObserved]] = {}
    for index, spec in enumerate(inputs):
        try:
            values = expand(spec.values)
            stats = {stat: expand(text) for stat, text in spec.stats.items()}
        except ValueError as exc:
            raise ValueError(f"input_signals[{index}] ({spec.name}): {exc}") from None
        source, kind = _source_and_kind(spec)
        for step, value in enumerate(values):
            if value is None:
                continue
            at = step * interval
            window_stats = {
                stat: series[step]
                for stat, series in stats.items()
                if step < len(series) and series[step] is not None
            }
            signal = SignalObserved(
                source=source,
                kind=kind,
                name=spec.name,
                subject=spec.name,
                labels=dict(spec.labels),
                value=value,
                stats={k: v for k, v in window_stats.items() if v is not None},
                window_start=at - interval,
                window_end=at,
                observed_at=at,
            )
            by_time.setdefault(at, []).append(signal)
    return by_time


def _source_and_kind(spec: _InputSpec) -> tuple[SignalSource, SignalKind]:
    """As given; else as the catalogue declares the signal; else a metrics rollup."""
    declared = catalogue.declared().get(spec.name)
    if spec.source is not None:
        source = spec.source
    else:
        source = declared.source if declared is not None else SignalSource.METRICS
    if spec.kind is not None:
        return source, spec.kind
    if declared is not None and declared.source is source:
        return source, declared.kind
    return source, _DEFAULT_KIND[source]


def _render(labels: dict[str, str], annotations: dict[str, str] | None) -> str:
    shown: dict[str, Any] = {"labels": dict(sorted(labels.items()))}
    if annotations is not None:
        shown["annotations"] = dict(sorted(annotations.items()))
    return json.dumps(shown, ensure_ascii=False)


def _compare(check: _Check, active: list[AlertInstance]) -> str | None:
    got = [
        a
        for a in active
        if a.state is AlertState.FIRING and a.labels.get(ALERTNAME) == check.alertname
    ]
    expected = [
        ({**e.exp_labels, ALERTNAME: check.alertname}, e.exp_annotations) for e in check.expected
    ]
    unmatched = list(got)
    missing = []
    for labels, exp_annotations in expected:
        for alert in unmatched:
            if dict(alert.labels) == labels and (
                exp_annotations is None or dict(alert.annotations) == exp_annotations
            ):
                unmatched.remove(alert)
                break
        else:
            missing.append((labels, exp_annotations))
    if not missing and not unmatched:
        return None
    # Show got alerts with annotations only when the test compares them.
    compare_annotations = any(a is not None for _, a in expected)
    exp_lines = sorted(_render(labels, shown) for labels, shown in expected)
    got_lines = sorted(
        _render(dict(a.labels), dict(a.annotations) if compare_annotations else None) for a in got
    )
    diff = difflib.unified_diff(exp_lines, got_lines, "expected", "got", lineterm="", n=0)
    body = "\n".join(f"    {line}" for line in diff if not line.startswith("@@"))
    return (
        f"alertname {check.alertname}, eval_time {format_duration(check.at)}:\n"
        f"  expected {len(expected)} firing, got {len(got)}\n{body}"
    )
