"""Rules: what to alert on. Parsed from YAML (files or the API) with located errors.

A rule file (Prometheus' layout, with a signal and a condition instead of PromQL)::

    groups:
      - name: api
        rules:
          - alert: HighErrorRate          # required, [a-zA-Z_][a-zA-Z0-9_]*
            kind: threshold               # threshold (default) | absence | rate | finding
            signal: http_error_ratio      # required: the signal name to match
            matchers: {env: prod}         # label equality, all must hold
            by: [service]                 # optional: the labels that identify an alert
            op: ">"                       # > < >= <= == !=
            threshold: 0.05
            stat: max                     # optional: compare a window statistic, not value
            for: 5m                       # pending this long before firing
            keep_firing_for: 2m           # keep firing this long after the condition ends
            labels: {severity: page}      # templated; override signal labels
            annotations: {summary: "..."} # templated with `labels` and `value`

Kinds and the fields each needs (any other kind-specific field is an error):

- ``threshold``: ``op`` and ``threshold`` (``stat`` optional). Evaluated per signal.
- ``absence``: ``absent_for`` (``forget_after`` optional). Fires for a series (the
  signal's labels, or its ``by`` labels) that has sent nothing for ``absent_for``; if no
  series has ever matched, for the matcher labels (like Prometheus' ``absent()``). The
  value is the seconds of silence. A series silent for ``forget_after`` is no longer
  expected (Consul's "deregister after"): its alert resolves and its memory is dropped,
  so series that are gone for good (a decommissioned host, a renamed service) do not page
  or take storage forever. Evaluated by ``Evaluator.tick``.
- ``rate``: ``window``, ``op``, ``threshold`` (``stat`` optional). The value is
  (value now - value at the window's start) / elapsed seconds, per series; it is not
  evaluated until the series' history covers the window.
- ``finding``: ``op``/``threshold`` optional (without them any matching signal holds),
  ``quiet_for`` optional. For query-analyzer findings and health-aggregator statuses: fires
  on a matching signal that holds; resolves on a later matching signal that does not hold
  (a health ``pass``), or once no holding signal arrived for ``quiet_for``.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import yaml
from jinja2 import TemplateSyntaxError

from alert_engine.core.templating import check_syntax
from alert_engine.core.validation import MAX_LABEL_NAME, find_unstorable
from opsmesh.durations import parse_duration
from opsmesh.events.signals import SignalObserved

Duration = str | float | int


class Comparison(enum.StrEnum):
    GT = ">"
    LT = "<"
    GE = ">="
    LE = "<="
    EQ = "=="
    NE = "!="


class RuleKind(enum.StrEnum):
    THRESHOLD = "threshold"
    ABSENCE = "absence"
    RATE = "rate"
    FINDING = "finding"


_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    Comparison.GT: operator.gt,
    Comparison.LT: operator.lt,
    Comparison.GE: operator.ge,
    Comparison.LE: operator.le,
    Comparison.EQ: operator.eq,
    Comparison.NE: operator.ne,
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One alerting rule of any kind; ``kind`` says which of the optional fields apply.

    One class rather than one per kind keeps ``list[Rule]`` simple for callers (the app,
    the API) and the evaluator dispatches on ``kind``. ``__post_init__`` enforces what
    each kind needs, so a rule built in code is as valid as one parsed from a file.
    """

    name: str
    signal: str
    op: Comparison = Comparison.GT
    threshold: float | None = None  # None: no condition, any matching signal holds (finding)
    matchers: Mapping[str, str] = field(default_factory=dict)
    stat: str | None = None  # compare a window statistic (max, mean, rate ...) instead of value
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    group: str = "default"
    kind: RuleKind = RuleKind.THRESHOLD
    by: tuple[str, ...] | None = None  # identity labels; None keeps all the signal's labels
    absent_for_s: float = 0.0  # absence
    window_s: float = 0.0  # rate
    quiet_for_s: float | None = None  # finding; None resolves only on a non-holding signal
    # absence: how long a silent series stays expected; None: the engine's default
    # (ALERT_ENGINE_ABSENCE_FORGET_AFTER_DAYS).
    forget_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind in (RuleKind.THRESHOLD, RuleKind.RATE) and self.threshold is None:
            raise ValueError(f"a {self.kind} rule needs op and threshold")
        if self.kind is RuleKind.ABSENCE and self.absent_for_s <= 0:
            raise ValueError("an absence rule needs absent_for > 0")
        if (
            self.forget_after_s is not None
            and self.forget_after_s <= self.absent_for_s + self.for_s
        ):
            raise ValueError("forget_after must be longer than absent_for + for")
        if self.kind is RuleKind.RATE and self.window_s <= 0:
            raise ValueError("a rate rule needs window > 0")

    @property
    def key(self) -> str:
        """Unique within a rule set (a name may repeat across groups)."""
        return f"{self.group}/{self.name}"

    def applies_to(self, signal: SignalObserved) -> bool:
        if signal.name != self.signal:
            return False
        return all(signal.labels.get(k) == v for k, v in self.matchers.items())

    def observed_value(self, signal: SignalObserved) -> float | None:
        if self.stat is None:
            return signal.value
        return signal.stats.get(self.stat)

    def holds(self, value: float) -> bool:
        if self.threshold is None:
            return True  # a finding without a condition: its presence is the condition
        return _COMPARE[self.op](value, self.threshold)

    def series_labels(self, signal_labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that identify a series (and its alert) for this rule."""
        if self.by is None:
            return dict(signal_labels)
        return {k: signal_labels[k] for k in self.by if k in signal_labels}


# -- file format ---------------------------------------------------------------------

_Name = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=200)]
# A rule's labels become the alert's: classic names within the events' limit.
_LabelName = Annotated[
    str, msgspec.Meta(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=MAX_LABEL_NAME)
]


class _RuleSpec(msgspec.Struct, forbid_unknown_fields=True, rename={"for_": "for"}):
    alert: _Name
    signal: str
    kind: RuleKind = RuleKind.THRESHOLD
    op: Comparison | None = None
    threshold: float | None = None
    matchers: dict[str, str] = {}
    by: list[str] | None = None
    stat: str | None = None
    for_: Duration = 0
    keep_firing_for: Duration = 0
    absent_for: Duration | None = None
    window: Duration | None = None
    quiet_for: Duration | None = None
    forget_after: Duration | None = None
    labels: dict[_LabelName, str] = {}
    annotations: dict[str, str] = {}


# Also the group's key in the API (a path segment) and in PostgreSQL.
_GroupName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class _GroupSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: _GroupName
    rules: list[dict[str, Any]]


# Which kind-specific fields each kind requires and allows; the rest are errors, so a
# misplaced `window:` on a threshold rule is reported rather than silently ignored.
_REQUIRED: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.THRESHOLD: ("op", "threshold"),
    RuleKind.ABSENCE: ("absent_for",),
    RuleKind.RATE: ("window", "op", "threshold"),
    RuleKind.FINDING: (),
}
_ALLOWED: dict[RuleKind, frozenset[str]] = {
    RuleKind.THRESHOLD: frozenset({"op", "threshold", "stat"}),
    RuleKind.ABSENCE: frozenset({"absent_for", "forget_after"}),
    RuleKind.RATE: frozenset({"window", "op", "threshold", "stat"}),
    RuleKind.FINDING: frozenset({"op", "threshold", "stat", "quiet_for"}),
}
_KIND_FIELDS = ("op", "threshold", "stat", "absent_for", "window", "quiet_for", "forget_after")


class RuleFileError(ValueError):
    """A rule file is invalid; each message says where (file, group, rule, field)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _rule_where(source: str, g_index: int, group: str, r_index: int, raw: object) -> str:
    alert = raw.get("alert") if isinstance(raw, dict) else None
    named = f" ({alert})" if isinstance(alert, str) else ""
    return f"{source}: groups[{g_index}] ({group}) rules[{r_index}]{named}"


def _build(spec: _RuleSpec, group: str) -> tuple[Rule | None, list[str]]:
    """The rule, or the field errors that prevent it (each ``field `x`: why``)."""
    errors: list[str] = []
    present = {f for f in _KIND_FIELDS if getattr(spec, f) is not None}
    for missing in _REQUIRED[spec.kind]:
        if missing not in present:
            errors.append(f"field `{missing}`: required for kind {spec.kind}")
    errors.extend(
        f"field `{extra}`: not used by kind {spec.kind}"
        for extra in sorted(present - _ALLOWED[spec.kind])
    )
    if spec.kind is RuleKind.FINDING and (spec.op is None) != (spec.threshold is None):
        errors.append("field `op`/`threshold`: give both or neither")

    def duration(name: str, value: Duration | None, *, positive: bool = False) -> float:
        if value is None:
            return 0.0
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            errors.append(f"field `{name}`: {exc}")
            return 0.0
        if positive and seconds <= 0:
            errors.append(f"field `{name}`: must be more than 0s")
        return seconds

    for_s = duration("for", spec.for_)
    keep_s = duration("keep_firing_for", spec.keep_firing_for)
    absent_s = duration("absent_for", spec.absent_for, positive=True)
    window_s = duration("window", spec.window, positive=True)
    quiet_s = duration("quiet_for", spec.quiet_for, positive=True)
    forget_s = duration("forget_after", spec.forget_after, positive=True)
    if spec.forget_after is not None and forget_s and forget_s <= absent_s + for_s:
        errors.append("field `forget_after`: must be longer than absent_for + for")
    for section, templates in (("labels", spec.labels), ("annotations", spec.annotations)):
        for key, text in templates.items():
            try:
                check_syntax(text)
            except TemplateSyntaxError as exc:
                errors.append(f"field `{section}.{key}`: template error: {exc}")
    if errors:
        return None, errors
    rule = Rule(
        name=spec.alert,
        signal=spec.signal,
        op=spec.op if spec.op is not None else Comparison.GT,
        threshold=spec.threshold,
        matchers=dict(spec.matchers),
        stat=spec.stat,
        for_s=for_s,
        keep_firing_for_s=keep_s,
        labels=dict(spec.labels),
        annotations=dict(spec.annotations),
        group=group,
        kind=spec.kind,
        by=tuple(spec.by) if spec.by is not None else None,
        absent_for_s=absent_s,
        window_s=window_s,
        quiet_for_s=quiet_s if spec.quiet_for is not None else None,
        forget_after_s=forget_s if spec.forget_after is not None else None,
    )
    return rule, []


class _NoAliasLoader(yaml.SafeLoader):
    """Refuses aliases: ``*a`` nine deep over nine-item lists is a few hundred bytes that
    expand to 9^9 nodes for every walk of the document ("billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", mark)
        return super().compose_node(parent, index)


def load_yaml(text: str, *, aliases: bool = True) -> Any:
    return yaml.load(text, Loader=yaml.SafeLoader if aliases else _NoAliasLoader)  # noqa: S506


def parse_rules(text: str, source: str = "<rules>", *, aliases: bool = True) -> list[Rule]:
    """Every rule in ``text``; raises RuleFileError listing every error found.
    ``aliases=False`` for text from the API, refusing YAML aliases.

    Every error in one run: each group and each field of each rule is checked on its
    own, so a file with several mistakes is fixed in one edit, not one per run.
    """
    try:
        raw = load_yaml(text, aliases=aliases)
    except yaml.YAMLError as exc:
        raise RuleFileError([f"{source}: not valid YAML: {exc}"]) from None
    # YAML's escapes ("\0", "\ud800") make text PostgreSQL cannot store; refused here
    # for files and the API alike, before anything is stored or evaluated.
    unstorable = find_unstorable(raw)
    if unstorable is not None:
        path, problem = unstorable
        raise RuleFileError([f"{source}: {path}: {problem.value}"])
    errors: list[str] = []
    groups = _groups(raw, source, errors)
    rules: list[Rule] = []
    seen: set[str] = set()
    for g_index, group, raw_rules in groups:
        for r_index, raw_rule in enumerate(raw_rules):
            where = _rule_where(source, g_index, group, r_index, raw_rule)
            rule, problems = _rule(raw_rule, group)
            errors.extend(f"{where}: {problem}" for problem in problems)
            if rule is None:
                continue
            if rule.key in seen:
                errors.append(f"{where}: duplicate rule {rule.name!r} in group {group!r}")
                continue
            seen.add(rule.key)
            rules.append(rule)
    if errors:
        raise RuleFileError(errors)
    return rules


def _groups(raw: object, source: str, errors: list[str]) -> list[tuple[int, str, list[Any]]]:
    """(index, name, raw rules) of each well-formed group; the rest become errors."""
    if not isinstance(raw, dict) or not isinstance(raw.get("groups"), list):
        errors.append(f"{source}: expected an object (a mapping) with a `groups` list")
        return []
    errors.extend(f"{source}: field `{key}`: unknown field" for key in raw if key != "groups")
    out = []
    for g_index, group in enumerate(raw["groups"]):
        name = group.get("name") if isinstance(group, dict) else None
        where = f"{source}: groups[{g_index}]" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(group, dict):
            errors.append(f"{where}: expected a mapping with `name` and `rules`")
            continue
        problems = [f"field `{key}`: unknown field" for key in group if key not in _GROUP_KEYS]
        if not isinstance(name, str):
            problems.append("field `name`: required, a string")
        else:
            try:
                msgspec.convert(name, _GroupName)
            except msgspec.ValidationError as exc:
                problems.append(f"field `name`: {exc}")
                name = None
        if not isinstance(group.get("rules"), list):
            problems.append("field `rules`: required, a list")
        errors.extend(f"{where}: {problem}" for problem in problems)
        if isinstance(name, str) and isinstance(group.get("rules"), list):
            out.append((g_index, name, group["rules"]))
    return out


_GROUP_KEYS = frozenset(f.encode_name for f in msgspec.structs.fields(_GroupSpec))


def _rule(raw: object, group: str) -> tuple[Rule | None, list[str]]:
    """The rule, or every error in it: each field is converted on its own, then the
    fields that converted are checked together (kinds, durations, templates)."""
    if not isinstance(raw, dict):
        return None, [f"expected a mapping, got {type(raw).__name__}"]
    fields = {f.encode_name: f for f in msgspec.structs.fields(_RuleSpec)}
    errors = [f"field `{key}`: unknown field" for key in raw if key not in fields]
    bad: set[str] = set()
    for name, info in fields.items():
        if name in raw:
            try:
                msgspec.convert(raw[name], info.type)
            except msgspec.ValidationError as exc:
                errors.append(f"field `{name}`: {exc}")
                bad.add(name)
        elif info.required:
            errors.append(f"field `{name}`: required")
            bad.add(name)
    good = {k: v for k, v in raw.items() if k in fields and k not in bad}
    # Placeholders for a bad name or signal, so the other fields are still checked.
    spec = msgspec.convert({"alert": "_", "signal": "_", **good}, _RuleSpec)
    rule, problems = _build(spec, group)
    # A field already reported as malformed is not reported again as missing.
    errors.extend(p for p in problems if not any(p.startswith(f"field `{b}`") for b in bad))
    return (rule if not errors else None), errors
