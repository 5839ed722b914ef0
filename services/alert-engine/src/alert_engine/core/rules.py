"""Rules: what to alert on. Parsed from YAML (files or the API) with located errors."""

from __future__ import annotations

import enum
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

import msgspec
import yaml

from alert_engine.core.durations import parse_duration
from opsmesh.events.signals import SignalObserved

Duration = str | float | int


class Comparison(enum.StrEnum):
    GT = ">"
    LT = "<"
    GE = ">="
    LE = "<="
    EQ = "=="
    NE = "!="


_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    Comparison.GT: operator.gt,
    Comparison.LT: operator.lt,
    Comparison.GE: operator.ge,
    Comparison.LE: operator.le,
    Comparison.EQ: operator.eq,
    Comparison.NE: operator.ne,
}


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Fires when a matching signal's value compares true against ``threshold``."""

    name: str
    signal: str
    op: Comparison
    threshold: float
    matchers: Mapping[str, str] = field(default_factory=dict)
    stat: str | None = None  # compare a window statistic (max, mean, rate ...) instead of value
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    group: str = "default"

    def applies_to(self, signal: SignalObserved) -> bool:
        if signal.name != self.signal:
            return False
        return all(signal.labels.get(k) == v for k, v in self.matchers.items())

    def observed_value(self, signal: SignalObserved) -> float | None:
        if self.stat is None:
            return signal.value
        return signal.stats.get(self.stat)

    def holds(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.threshold)


# -- file format ---------------------------------------------------------------------

_Name = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=200)]


class _RuleSpec(msgspec.Struct, forbid_unknown_fields=True, rename={"for_": "for"}):
    alert: _Name
    signal: str
    op: Comparison
    threshold: float
    matchers: dict[str, str] = {}
    stat: str | None = None
    for_: Duration = 0
    keep_firing_for: Duration = 0
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class _GroupSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    rules: list[_RuleSpec]


class _FileSpec(msgspec.Struct, forbid_unknown_fields=True):
    groups: list[_GroupSpec]


class RuleFileError(ValueError):
    """A rule file is invalid; the message says where (file, group, rule, field)."""


_ERROR_PATH = re.compile(r"`\$\.groups\[(\d+)\](?:\.rules\[(\d+)\])?")


def _locate(raw: object, message: str) -> str:
    """``groups[i] (name) rules[j] (alert): `` for a schema error inside a group or rule.

    msgspec's error path has indexes only; a rule file's author thinks in names.
    """
    match = _ERROR_PATH.search(message)
    if match is None:
        return ""

    def item(container: object, key: str, index: int) -> object:
        seq = container.get(key) if isinstance(container, dict) else None
        return seq[index] if isinstance(seq, list) and index < len(seq) else None

    def name(node: object, field_name: str) -> str:
        value = node.get(field_name) if isinstance(node, dict) else None
        return f" ({value})" if isinstance(value, str) else ""

    g_index = int(match.group(1))
    group = item(raw, "groups", g_index)
    where = f"groups[{g_index}]{name(group, 'name')}"
    if match.group(2) is not None:
        r_index = int(match.group(2))
        where += f" rules[{r_index}]{name(item(group, 'rules', r_index), 'alert')}"
    return f"{where}: "


def parse_rules(text: str, source: str = "<rules>") -> list[ThresholdRule]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleFileError(f"{source}: not valid YAML: {exc}") from None
    try:
        spec = msgspec.convert(raw, _FileSpec)
    except msgspec.ValidationError as exc:
        raise RuleFileError(f"{source}: {_locate(raw, str(exc))}{exc}") from None
    rules: list[ThresholdRule] = []
    seen: set[str] = set()
    for g_index, group in enumerate(spec.groups):
        for r_index, rule in enumerate(group.rules):
            where = f"{source}: groups[{g_index}] ({group.name}) rules[{r_index}] ({rule.alert})"
            try:
                for_s = parse_duration(rule.for_)
                keep_s = parse_duration(rule.keep_firing_for)
            except ValueError as exc:
                raise RuleFileError(f"{where}: {exc}") from None
            key = f"{group.name}/{rule.alert}"
            if key in seen:
                raise RuleFileError(
                    f"{where}: duplicate rule {rule.alert!r} in group {group.name!r}"
                )
            seen.add(key)
            rules.append(
                ThresholdRule(
                    name=rule.alert,
                    signal=rule.signal,
                    op=rule.op,
                    threshold=rule.threshold,
                    matchers=dict(rule.matchers),
                    stat=rule.stat,
                    for_s=for_s,
                    keep_firing_for_s=keep_s,
                    labels=dict(rule.labels),
                    annotations=dict(rule.annotations),
                    group=group.name,
                )
            )
    return rules
