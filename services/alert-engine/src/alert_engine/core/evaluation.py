"""Rule evaluation: inactive → pending → firing → resolved, in time passed by the caller.

Semantics follow Prometheus: an alert is pending from the first true evaluation and
fires once the condition has held for ``for``; with ``keep_firing_for`` it keeps firing
that long after the first evaluation that found the condition false.

Two entry points drive evaluation:

- ``observe(signal, now)``: each signal is one evaluation of the rules that match it
  (threshold, rate and finding rules; for absence rules it records that the series is
  alive and ends an absence alert).
- ``tick(now)``: time-driven evaluation, called by the pipeline every poll whether or not
  signals arrived. It fires absence rules, resolves findings after their quiet period,
  promotes pending findings whose ``for`` elapsed, and ends ``keep_firing_for`` windows
  that have run out (without a tick, an alert whose series went silent could never end).

Durable state beyond the alerts: ``take_updates()`` (alerts whose keep_firing_since
changed) and ``take_series_updates()`` (when absence rules last saw each series); load
them back with ``restore()`` and ``restore_series()``. A series silent for its rule's
``forget_after`` (``forget_after_s(rule)``) is dropped by ``tick``; the alert-engine's
retention job deletes the same rows by the same rule (``pipeline/retention.py``), so
memory and table agree, and a restart that reloads a row the job has not reached yet
forgets it again at the first tick. Rate history is not durable: after
a restart a rate rule waits until its window is covered again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from alert_engine.core.rules import Rule, RuleKind
from alert_engine.core.templating import render_all
from alert_engine.core.validation import MAX_ANNOTATION_VALUE, MAX_LABEL_VALUE, storable_map
from opsmesh.events.alerts import AlertState
from opsmesh.events.signals import SignalObserved
from opsmesh.labels import fingerprint

ALERTNAME = "alertname"
# How long an absence rule keeps expecting a silent series unless the rule says
# (``forget_after``); the service's setting ALERT_ENGINE_ABSENCE_FORGET_AFTER_DAYS.
DEFAULT_FORGET_AFTER_S = 86_400.0


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
    # The W3C traceparent of the signal that fired it (while pending: that made it
    # pending; a finding promoted by time keeps that one). "": none (absence alerts).
    trace: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    alert: AlertInstance
    previous: AlertState
    at: float


@dataclass(frozen=True, slots=True)
class SeriesSeen:
    """When an absence rule last saw a series: persist it so silence spans restarts."""

    rule: str  # Rule.key (group/name)
    fingerprint: str  # of the series labels
    labels: Mapping[str, str]  # the series labels (after the rule's ``by``)
    last_seen: float


# Bound on one rate series' history; past it the samples next to the baseline are thinned,
# so memory stays bounded when signals arrive far more often than the window needs.
MAX_RATE_HISTORY = 512


def alert_labels(
    rule: Rule, signal_labels: Mapping[str, str], value: float | None = None
) -> dict[str, str]:
    """The signal's labels, overridden by the rule's labels, plus ``alertname``.

    The rule's labels are templates (``labels``, ``value``) as in Prometheus; like there,
    a label that renders the value changes the alert's identity whenever the value does.
    """
    labels = dict(signal_labels)
    # Rendered text is the engine's own: made storable and cut to the events' limit
    # rather than refused (a template can print "\0"; its output must still be stored).
    labels.update(storable_map(render_all(rule.labels, signal_labels, value), MAX_LABEL_VALUE))
    labels[ALERTNAME] = rule.name
    return labels


def _annotations(rule: Rule, labels: Mapping[str, str], value: float) -> dict[str, str]:
    return storable_map(render_all(rule.annotations, labels, value), MAX_ANNOTATION_VALUE)


class Evaluator:
    def __init__(
        self, rules: Sequence[Rule], *, forget_after_s: float = DEFAULT_FORGET_AFTER_S
    ) -> None:
        if forget_after_s <= 0:
            raise ValueError("forget_after_s must be positive")
        self.default_forget_after_s = forget_after_s
        self._rules = list(rules)
        self._by_signal: dict[str, list[Rule]] = {}
        for rule in self._rules:
            self._by_signal.setdefault(rule.signal, []).append(rule)
        self._rules_by_name = {r.name: r for r in self._rules}
        self._absence = [r for r in self._rules if r.kind is RuleKind.ABSENCE]
        self._active: dict[str, AlertInstance] = {}
        # Alerts in _active per rule name: a false evaluation of a rule with none is a no-op.
        self._active_per_rule: dict[str, int] = {}
        self._updated: dict[str, AlertInstance] = {}
        # Which rule raised an alert; restored alerts fall back to the rule's name.
        self._rule_of: dict[str, Rule] = {}
        self._seen: dict[str, dict[str, SeriesSeen]] = {r.key: {} for r in self._absence}
        self._seen_updates: dict[tuple[str, str], SeriesSeen] = {}
        # Absence rules that never saw a series: silent since the first tick (Prometheus'
        # absent()); not durable, so after a restart the wait starts again.
        self._never_seen_since: dict[str, float] = {}
        self._history: dict[tuple[str, str], deque[tuple[float, float]]] = {}

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    def forget_after_s(self, rule: Rule) -> float:
        """How long ``rule`` (an absence rule) keeps expecting a silent series: its own
        ``forget_after``, else the default — but never so short that the series' alert
        could not fire first (``absent_for`` + ``for``, plus a minute)."""
        if rule.forget_after_s is not None:
            return rule.forget_after_s
        return max(self.default_forget_after_s, rule.absent_for_s + rule.for_s + 60.0)

    def absence_rules(self) -> list[Rule]:
        return list(self._absence)

    def watches(self, signal_name: str) -> bool:
        """Whether any rule reads signals of this name."""
        return signal_name in self._by_signal

    def active(self) -> list[AlertInstance]:
        return list(self._active.values())

    def take_updates(self) -> list[AlertInstance]:
        """Durable state that changed without a transition (a keep_firing_for window
        opening or closing), to persist alongside the transitions."""
        updated, self._updated = list(self._updated.values()), {}
        return updated

    def take_series_updates(self) -> list[SeriesSeen]:
        """Absence rules' last-seen times that changed since the last call, to persist."""
        updated, self._seen_updates = list(self._seen_updates.values()), {}
        return updated

    def seen_series(self) -> list[SeriesSeen]:
        return [s for by_fp in self._seen.values() for s in by_fp.values()]

    def restore(self, instances: Iterable[AlertInstance]) -> None:
        """Load pending/firing alerts from durable state after a restart."""
        for instance in instances:
            if instance.state in (AlertState.PENDING, AlertState.FIRING):
                self._activate(instance)

    def restore_series(self, seen: Iterable[SeriesSeen]) -> None:
        """Load absence rules' last-seen times; entries for unknown rules are ignored."""
        for entry in seen:
            by_fp = self._seen.get(entry.rule)
            if by_fp is None:
                continue
            current = by_fp.get(entry.fingerprint)
            if current is None or current.last_seen < entry.last_seen:
                by_fp[entry.fingerprint] = entry

    def observe(self, signal: SignalObserved, now: float, trace: str = "") -> list[Transition]:
        """``trace``: the signal's traceparent, which an alert it activates or fires keeps."""
        transitions: list[Transition] = []
        for rule in self._by_signal.get(signal.name, ()):
            if not rule.applies_to(signal):
                continue
            series = rule.series_labels(signal.labels)
            if rule.kind is RuleKind.ABSENCE:
                transitions.extend(self._series_alive(rule, series, now))
                continue
            value = rule.observed_value(signal)
            if value is None:
                continue
            if rule.kind is RuleKind.RATE:
                value = self._rate(rule, fingerprint(series), value, now)
                if value is None:
                    continue
            holds = rule.holds(value)
            if not holds and not self._active_per_rule.get(rule.name):
                # Steady state: nothing pending or firing for this rule, so a false
                # evaluation changes nothing; skip templating and fingerprinting.
                continue
            labels = alert_labels(rule, series, value)
            transition = self._evaluate(rule, labels, value, holds, now, trace)
            if transition is not None:
                transitions.append(transition)
        return transitions

    def tick(self, now: float) -> list[Transition]:
        """Time-driven evaluation; call every poll with the injected clock's time."""
        transitions: list[Transition] = []
        for rule in self._absence:
            transitions.extend(self._forget_silent(rule, now))
            silent: list[tuple[dict[str, str], float]] = [
                (dict(s.labels), s.last_seen) for s in self._seen[rule.key].values()
            ]
            if not silent:
                since = self._never_seen_since.setdefault(rule.key, now)
                silent.append((rule.series_labels(rule.matchers), since))
            for series, last_seen in silent:
                silence = now - last_seen
                labels = alert_labels(rule, series, silence)
                holds = silence >= rule.absent_for_s
                transition = self._evaluate(rule, labels, silence, holds, now)
                if transition is not None:
                    transitions.append(transition)
        for fp in list(self._active):
            current = self._active.get(fp)
            if current is None:
                continue  # resolved above in this tick
            owner = self._rule_for(current)
            if owner is None:
                continue
            transition = self._tick_alert(owner, current, now)
            if transition is not None:
                transitions.append(transition)
        return transitions

    def _tick_alert(self, rule: Rule, current: AlertInstance, now: float) -> Transition | None:
        if current.keep_firing_since is not None:
            # Only an elapsed keep_firing_for window ends here; a fresh signal may renew it.
            if now - current.keep_firing_since >= rule.keep_firing_for_s:
                return self._condition_false(rule, current, current.value, now)
            return None
        if rule.kind is not RuleKind.FINDING:
            return None
        last_true = current.last_true_at if current.last_true_at is not None else now
        if rule.quiet_for_s is not None and now - last_true >= rule.quiet_for_s:
            return self._condition_false(rule, current, current.value, now)
        active_at = current.active_at if current.active_at is not None else now
        if current.state is AlertState.PENDING and now - active_at >= rule.for_s:
            # A finding holds until its quiet period ends, so `for` can elapse between
            # findings; the next finding may be far off.
            fired = replace(current, state=AlertState.FIRING, fired_at=now)
            self._active[fired.fingerprint] = fired
            return Transition(fired, AlertState.PENDING, now)
        return None

    def _forget_silent(self, rule: Rule, now: float) -> list[Transition]:
        """Drop the series silent for ``forget_after``, resolving their absence alerts.
        If none is left, the rule waits as if it had never seen one (``absent()``), from
        the last time any was seen."""
        seen = self._seen[rule.key]
        cutoff = now - self.forget_after_s(rule)
        gone = [s for s in seen.values() if s.last_seen < cutoff]
        transitions: list[Transition] = []
        for entry in gone:
            del seen[entry.fingerprint]
            self._seen_updates.pop((rule.key, entry.fingerprint), None)
            current = self._active.get(fingerprint(alert_labels(rule, entry.labels)))
            if current is None:
                continue
            transition = self._condition_false(rule, current, now - entry.last_seen, now)
            if transition is not None:
                transitions.append(transition)
        if gone and not seen:
            self._never_seen_since[rule.key] = max(s.last_seen for s in gone)
        return transitions

    def _rule_for(self, instance: AlertInstance) -> Rule | None:
        return self._rule_of.get(instance.fingerprint) or self._rules_by_name.get(instance.rule)

    def _series_alive(self, rule: Rule, series: dict[str, str], now: float) -> list[Transition]:
        """A signal for an absence rule's series: record it and end its absence alerts."""
        fp = fingerprint(series)
        entry = SeriesSeen(rule.key, fp, series, now)
        self._seen[rule.key][fp] = entry
        self._seen_updates[(rule.key, fp)] = entry
        # Any live series also ends the "no series at all" alert (matcher labels).
        self._never_seen_since.pop(rule.key, None)
        ended = [alert_labels(rule, series), alert_labels(rule, rule.series_labels(rule.matchers))]
        transitions: list[Transition] = []
        for labels in ended:
            current = self._active.get(fingerprint(labels))
            if current is None:
                continue
            transition = self._condition_false(rule, current, 0.0, now)
            if transition is not None:
                transitions.append(transition)
        return transitions

    def _rate(self, rule: Rule, series_fp: str, value: float, now: float) -> float | None:
        """Change per second from the sample at (or just before) the window's start to now;
        None until the series' history covers the window."""
        history = self._history.setdefault((rule.key, series_fp), deque())
        if history and now < history[-1][0]:
            return None  # out of order: keep the history monotonic
        history.append((now, value))
        start = now - rule.window_s
        # Keep one baseline at or before the window start; older samples are not needed.
        while len(history) >= 2 and history[1][0] <= start:
            history.popleft()
        if len(history) > MAX_RATE_HISTORY:
            del history[1]
        base_t, base_v = history[0]
        if base_t > start or base_t >= now:
            return None
        return (value - base_v) / (now - base_t)

    def _evaluate(  # noqa: PLR0917 - the hot path's one call per signal
        self,
        rule: Rule,
        labels: dict[str, str],
        value: float,
        holds: bool,
        now: float,
        trace: str = "",
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
                    annotations=_annotations(rule, labels, value),
                    state=state,
                    value=value,
                    active_at=now,
                    fired_at=now if state is AlertState.FIRING else None,
                    resolved_at=None,
                    last_true_at=now,
                    trace=trace,
                )
                self._activate(instance)
                self._rule_of[fp] = rule
                return Transition(instance, AlertState.INACTIVE, now)
            updated = replace(
                current,
                value=value,
                last_true_at=now,
                keep_firing_since=None,
                annotations=_annotations(rule, labels, value),
            )
            if current.keep_firing_since is not None:
                self._updated[fp] = updated
            active_at = current.active_at if current.active_at is not None else now
            if current.state is AlertState.PENDING and now - active_at >= rule.for_s:
                updated = replace(
                    updated, state=AlertState.FIRING, fired_at=now, trace=trace or current.trace
                )
                self._active[fp] = updated
                return Transition(updated, AlertState.PENDING, now)
            self._active[fp] = updated
            return None
        if current is None:
            return None
        return self._condition_false(rule, current, value, now)

    def _condition_false(
        self, rule: Rule, current: AlertInstance, value: float | None, now: float
    ) -> Transition | None:
        if current.state is AlertState.PENDING:
            self._forget(current.fingerprint)
            ended = replace(current, state=AlertState.INACTIVE, value=value, resolved_at=now)
            return Transition(ended, AlertState.PENDING, now)
        since = current.keep_firing_since if current.keep_firing_since is not None else now
        if now - since < rule.keep_firing_for_s:
            kept = replace(current, value=value, keep_firing_since=since)
            self._active[current.fingerprint] = kept
            if current.keep_firing_since is None:
                self._updated[kept.fingerprint] = kept
            return None
        self._forget(current.fingerprint)
        resolved = replace(current, state=AlertState.RESOLVED, value=value, resolved_at=now)
        return Transition(resolved, AlertState.FIRING, now)

    def _activate(self, instance: AlertInstance) -> None:
        if instance.fingerprint not in self._active:
            count = self._active_per_rule.get(instance.rule, 0)
            self._active_per_rule[instance.rule] = count + 1
        self._active[instance.fingerprint] = instance

    def _forget(self, fp: str) -> None:
        instance = self._active.pop(fp)
        self._rule_of.pop(fp, None)
        left = self._active_per_rule.get(instance.rule, 0) - 1
        if left > 0:
            self._active_per_rule[instance.rule] = left
        else:
            self._active_per_rule.pop(instance.rule, None)
