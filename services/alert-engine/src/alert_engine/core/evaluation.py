"""Rule evaluation: inactive → pending → firing → resolved, in time passed by the caller.

Semantics follow Prometheus: an alert is pending from the first true evaluation and
fires once the condition has held for ``for``; with ``keep_firing_for`` it keeps firing
that long after the first evaluation that found the condition false. Each signal is one
evaluation of the rules that match it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from alert_engine.core.rules import ThresholdRule
from alert_engine.core.templating import render_all
from opsmesh.events.alerts import AlertState
from opsmesh.events.signals import SignalObserved
from opsmesh.labels import fingerprint

ALERTNAME = "alertname"


@dataclass(frozen=True, slots=True)
class AlertInstance:
    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    value: float | None
    active_at: float | None  # when the condition first held (pending or firing)
    fired_at: float | None
    resolved_at: float | None
    last_true_at: float | None
    # Set at the first false evaluation of a firing alert with keep_firing_for (Prometheus'
    # KeepFiringSince); cleared when the condition holds again.
    keep_firing_since: float | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    alert: AlertInstance
    previous: AlertState
    at: float


def alert_labels(rule: ThresholdRule, signal_labels: Mapping[str, str]) -> dict[str, str]:
    labels = dict(signal_labels)
    labels.update(rule.labels)
    labels[ALERTNAME] = rule.name
    return labels


class Evaluator:
    def __init__(self, rules: Sequence[ThresholdRule]) -> None:
        self._rules = list(rules)
        self._by_signal: dict[str, list[ThresholdRule]] = {}
        for rule in self._rules:
            self._by_signal.setdefault(rule.signal, []).append(rule)
        self._rules_by_name = {r.name: r for r in self._rules}
        self._active: dict[str, AlertInstance] = {}
        self._updated: dict[str, AlertInstance] = {}

    @property
    def rules(self) -> list[ThresholdRule]:
        return list(self._rules)

    def active(self) -> list[AlertInstance]:
        return list(self._active.values())

    def take_updates(self) -> list[AlertInstance]:
        """Durable state that changed without a transition (a keep_firing_for window
        opening or closing), to persist alongside the transitions."""
        updated, self._updated = list(self._updated.values()), {}
        return updated

    def restore(self, instances: Iterable[AlertInstance]) -> None:
        """Load pending/firing alerts from durable state after a restart."""
        for instance in instances:
            if instance.state in (AlertState.PENDING, AlertState.FIRING):
                self._active[instance.fingerprint] = instance

    def observe(self, signal: SignalObserved, now: float) -> list[Transition]:
        transitions: list[Transition] = []
        for rule in self._by_signal.get(signal.name, ()):
            if not rule.applies_to(signal):
                continue
            value = rule.observed_value(signal)
            if value is None:
                continue
            labels = alert_labels(rule, signal.labels)
            transition = self._evaluate(rule, labels, value, rule.holds(value), now)
            if transition is not None:
                transitions.append(transition)
        return transitions

    def _evaluate(
        self, rule: ThresholdRule, labels: dict[str, str], value: float, holds: bool, now: float
    ) -> Transition | None:
        fp = fingerprint(labels)
        current = self._active.get(fp)
        if holds:
            if current is None:
                state = AlertState.FIRING if rule.for_s <= 0 else AlertState.PENDING
                instance = AlertInstance(
                    fingerprint=fp,
                    rule=rule.name,
                    labels=labels,
                    annotations=render_all(rule.annotations, labels, value),
                    state=state,
                    value=value,
                    active_at=now,
                    fired_at=now if state is AlertState.FIRING else None,
                    resolved_at=None,
                    last_true_at=now,
                )
                self._active[fp] = instance
                return Transition(instance, AlertState.INACTIVE, now)
            updated = replace(
                current,
                value=value,
                last_true_at=now,
                keep_firing_since=None,
                annotations=render_all(rule.annotations, labels, value),
            )
            if current.keep_firing_since is not None:
                self._updated[fp] = updated
            active_at = current.active_at if current.active_at is not None else now
            if current.state is AlertState.PENDING and now - active_at >= rule.for_s:
                updated = replace(updated, state=AlertState.FIRING, fired_at=now)
                self._active[fp] = updated
                return Transition(updated, AlertState.PENDING, now)
            self._active[fp] = updated
            return None
        if current is None:
            return None
        return self._condition_false(rule, current, value, now)

    def _condition_false(
        self, rule: ThresholdRule, current: AlertInstance, value: float | None, now: float
    ) -> Transition | None:
        if current.state is AlertState.PENDING:
            del self._active[current.fingerprint]
            ended = replace(current, state=AlertState.INACTIVE, value=value, resolved_at=now)
            return Transition(ended, AlertState.PENDING, now)
        since = current.keep_firing_since if current.keep_firing_since is not None else now
        if now - since < rule.keep_firing_for_s:
            kept = replace(current, value=value, keep_firing_since=since)
            self._active[current.fingerprint] = kept
            if current.keep_firing_since is None:
                self._updated[kept.fingerprint] = kept
            return None
        del self._active[current.fingerprint]
        resolved = replace(current, state=AlertState.RESOLVED, value=value, resolved_at=now)
        return Transition(resolved, AlertState.FIRING, now)
