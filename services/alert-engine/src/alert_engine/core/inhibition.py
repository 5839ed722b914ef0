"""Inhibition: a firing source alert mutes target alerts that share its ``equal`` labels.

Follows Alertmanager: a missing label counts as the empty value; an alert that matches
both sides of a rule cannot be inhibited by alerts that also match both sides (including
itself). Evaluated at notification time, against the current firing alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alert_engine.core.matchers import Matcher, matches_all


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()
    name: str = ""

    def equal_key(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)


@dataclass(frozen=True, slots=True)
class Inhibition:
    rule: InhibitRule
    source_fingerprint: str


class Inhibitor:
    """Built from the firing alerts at one instant; answers ``mutes`` for targets."""

    def __init__(
        self, rules: Iterable[InhibitRule], firing: Iterable[tuple[str, Mapping[str, str]]]
    ) -> None:
        self._rules = list(rules)
        # Per rule: equal-key → [(source fingerprint, source also matches target side)]
        self._index: list[dict[tuple[str, ...], list[tuple[str, bool]]]] = []
        alerts = list(firing)
        for rule in self._rules:
            index: dict[tuple[str, ...], list[tuple[str, bool]]] = {}
            for fingerprint, labels in alerts:
                if matches_all(rule.source_matchers, labels):
                    both = matches_all(rule.target_matchers, labels)
                    index.setdefault(rule.equal_key(labels), []).append((fingerprint, both))
            self._index.append(index)

    def inhibited_by(self, labels: Mapping[str, str]) -> Inhibition | None:
        for rule, index in zip(self._rules, self._index, strict=True):
            if not matches_all(rule.target_matchers, labels):
                continue
            target_is_source = matches_all(rule.source_matchers, labels)
            for fingerprint, source_is_target in index.get(rule.equal_key(labels), ()):
                if target_is_source and source_is_target:
                    continue  # the self-inhibition guard
                return Inhibition(rule, fingerprint)
        return None
