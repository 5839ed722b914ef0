"""Ingest: alerts posted through the API and rule evaluations, merged into the active
alerts and routed to their groups' owners.

A POST is merged and its routing records queued under the engine lock (no await), then
sent after it (``RoutingOutbox``) and answered once Kafka has them; the groups' owners
make them durable (``Ownership.persist``). A rule evaluation is merged under the lock
too; then, outside it, its effects are made durable in ``WriteStep`` order, oldest
evaluation first.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from alert_engine.core.active_alerts import IngestOutcome
from alert_engine.core.alerts import AlertSource, StoredAlert
from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen, Transition
from alert_engine.pipeline.convert import state_changed
from alert_engine.pipeline.route_out import Ingested, RouteOut
from alert_engine.pipeline.routing_outbox import RoutingOutbox, Ticket
from alert_engine.pipeline.state.held import Held
from alert_engine.pipeline.state.metrics import EngineMetrics
from alert_engine.pipeline.state.stores import Stores
from opsmesh.events.alerts import AlertState
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import Received
from opsmesh.kafka.producer import EventProducer
from opsmesh.tracing.context import new_trace, parse_traceparent, traceparent_of

_SIZE = 55  # a version-00 traceparent; anything else is not kept

# Transitions, each one's cause (its signal's traceparent), state updates, series seen.
Evaluated = tuple[list[Transition], list[str], list[AlertInstance], list[SeriesSeen]]


def evaluate(
    evaluator: Evaluator, batch: Sequence[Received[SignalObserved]], now: float
) -> Evaluated:
    """The rules over one batch of signals, then the time-driven ones (pure: run in the
    render threads, under the engine lock, by ``EngineState.evaluate``)."""
    transitions: list[Transition] = []
    causes: list[str] = []
    for record in batch:
        event = record.event
        if not evaluator.watches(event.name):
            continue  # no rule reads it: not even its header is parsed
        # The header as sent, parsed only when it makes a transition (``merge_evaluated``):
        # parsing every signal's would cost the hot path a microsecond each. Kept only if
        # it is 55 ASCII letters, digits and dashes (never a NUL that storage refuses).
        raw = traceparent_of(getattr(record.message, "headers", None))
        plain = raw is not None and len(raw) == _SIZE and raw.replace(b"-", b"").isalnum()
        trace = raw.decode("ascii") if plain and raw is not None else ""
        found = evaluator.observe(event, now, trace)
        transitions.extend(found)
        causes.extend(trace for _ in found)
    # Time-driven rules (absence, quiet periods, keep_firing_for ending) are
    # evaluated every poll, whether or not signals arrived.
    ticked = evaluator.tick(now)
    transitions.extend(ticked)
    causes.extend("" for _ in ticked)
    return transitions, causes, evaluator.take_updates(), evaluator.take_series_updates()


def valid_trace(traceparent: str) -> str:
    """The traceparent normalised, or "" when it is not one (signals' headers are only
    checked once they make a transition)."""
    context = parse_traceparent(traceparent) if traceparent else None
    return context.header() if context is not None else ""


class WriteStep(enum.IntEnum):
    """How far an evaluation's write got: a failed one resumes at the step that failed,
    so no history row is written twice and nothing is skipped.

    The rule state is written last: it is what a restart restores the evaluator from, so
    until every effect of a transition (alert row, state event, routing record) is
    durable, a crash must find the rule in its previous state and make the transition
    again on replay. Written first, a crash before routing restored a resolved rule that
    never routed its resolve (nothing to re-evaluate; the alert stayed firing)."""

    ALERTS = 1
    EVENTS = 2
    ROUTING = 3
    RULES = 4
    DONE = 5


@dataclass(eq=False, slots=True)
class RuleWrite:
    """What one rule evaluation must make durable and send (planned under the lock)."""

    transitions: list[Transition]
    updates: list[AlertInstance]
    accepted: list[StoredAlert]  # as merged into the active alerts
    traces: list[str]  # per transition: the traceparent its state change continues
    step: WriteStep = WriteStep.ALERTS
    ticket: Ticket | None = None  # its routing records, once queued

    def empty(self) -> bool:
        return not (self.transitions or self.updates or self.accepted)

    def unrouted(self) -> bool:
        return self.step is WriteStep.ROUTING and self.ticket is None


class Ingest:
    def __init__(
        self,
        held: Held,
        *,
        stores: Stores,
        producer: EventProducer,
        outbox: RoutingOutbox,
        route_out: RouteOut,
        metrics: EngineMetrics,
        origin: str,
        external_url: str,
    ) -> None:
        self._held = held
        self._stores = stores
        self._producer = producer
        self._outbox = outbox
        self._route_out = route_out
        self._metrics = metrics
        self._origin = origin
        self._external_url = external_url
        # Evaluations not yet durable and sent, oldest first (``write_rules``).
        self._unwritten: deque[RuleWrite] = deque()
        self._seen_unwritten: dict[tuple[str, str], SeriesSeen] = {}

    # -- under the engine lock: no await ----------------------------------------------

    def merge_posted(self, alerts: Sequence[StoredAlert], now: float) -> tuple[Ticket, int]:
        """Alerts from the API merged, their routing records queued (in merge order);
        returns the ticket to send and how many were accepted."""
        accepted = self._merge_api(alerts, now)
        return self._outbox.add(self._route_out.records(self._held.engine, accepted)), len(accepted)

    def merge_evaluated(self, evaluated: Evaluated, now: float) -> RuleWrite:
        """Rule evaluation results merged into the active alerts. Each state change
        continues the trace of the signal that caused it ("": time-driven), else the
        alert's; an alert without one (an absence alert) starts a trace, which the
        active alerts keep for its routing and notifications."""
        transitions, causes, updates, seen = evaluated
        stored: list[StoredAlert] = []
        traces: list[str] = []
        for i, t in enumerate(transitions):
            trace = valid_trace(t.alert.trace) or new_trace().header()
            alert = self._from_rule(t.alert, now, trace)
            if alert is not None:
                stored.append(alert)
            traces.append(valid_trace(causes[i] if i < len(causes) else "") or trace)
        accepted = self._merge_rules(stored, now) if stored else []
        for one in seen:  # the newest per series: a retried batch adds no more of them
            self._seen_unwritten[(one.rule, one.fingerprint)] = one
        return RuleWrite(list(transitions), list(updates), accepted, traces)

    def route(self, work: RuleWrite) -> None:
        """Queue an evaluation's routing records once its rows are durable, as the active
        alerts hold them now: a later merge (a POST of the same labels) queued since
        carries no newer version than this."""
        active = self._held.engine.alerts
        current = [active.get(a.fingerprint) for a in work.accepted]
        work.ticket = self._outbox.add(
            self._route_out.records(self._held.engine, [(a, None, None) for a in current if a])
        )

    # -- without the engine lock ---------------------------------------------------

    async def sent(self, ticket: Ticket) -> None:
        await self._outbox.sent(ticket)

    def queue(self, work: RuleWrite) -> None:
        if not work.empty():
            self._unwritten.append(work)

    async def save_seen(self) -> None:
        """The absence rules' last-seen times; kept for the next call if the write fails."""
        if not self._seen_unwritten:
            return
        seen = self._seen_unwritten
        self._seen_unwritten = {}
        try:
            await self._stores.series.save(list(seen.values()))
        except BaseException:
            self._seen_unwritten = {**seen, **self._seen_unwritten}
            raise

    def oldest_unwritten(self) -> RuleWrite | None:
        return self._unwritten[0] if self._unwritten else None

    async def write_durable(self, work: RuleWrite) -> None:
        """The steps before routing: the alert rows, then the state events."""
        if work.step is WriteStep.ALERTS:
            await self._stores.active.save(work.accepted, origin=self._origin)
            work.step = WriteStep.EVENTS
        if work.step is WriteStep.EVENTS:
            if work.transitions:
                await self._producer.publish_many(
                    state_changed(t, trace)
                    for t, trace in zip(work.transitions, work.traces, strict=True)
                )
            for transition in work.transitions:
                self._metrics.transitions.labels(transition.alert.state.value).inc()
            work.step = WriteStep.ROUTING

    async def finish(self, work: RuleWrite) -> None:
        """The steps after ``route``: the routing records sent (a failed send is queued
        again by the retry), then the rule state and history; the write leaves the queue."""
        if work.step is WriteStep.ROUTING:
            if work.ticket is None:  # the façade's order: ``route`` (engine lock), then this
                raise RuntimeError("finish called before the evaluation's records were queued")
            try:
                await self._outbox.sent(work.ticket)
            except Exception:
                work.ticket = None
                raise
            work.step = WriteStep.RULES
        if work.step is WriteStep.RULES:
            await self._stores.rules.record(work.transitions, work.updates)
            work.step = WriteStep.DONE
        self._unwritten.popleft()

    # -- merging -------------------------------------------------------------------

    def _merge_api(self, alerts: Sequence[StoredAlert], now: float) -> list[Ingested]:
        active = self._held.engine.alerts
        counts = dict.fromkeys(IngestOutcome, 0)
        out: list[Ingested] = []
        for alert in alerts:
            old = active.get(alert.fingerprint)
            was_firing = old is not None and not old.resolved(now)
            outcome, merged = active.put(alert, now)
            counts[outcome] += 1
            if outcome is IngestOutcome.LIMITED or merged is None:
                continue
            if not was_firing and not alert.resolved(now):
                out.append((merged, AlertState.INACTIVE, AlertState.FIRING))
            elif was_firing and alert.resolved(now):
                out.append((merged, AlertState.FIRING, AlertState.RESOLVED))
            else:
                out.append((merged, None, None))
        received = self._metrics.alerts_received
        for outcome, count in counts.items():
            if count:
                received.labels(AlertSource.API.value, outcome.value).inc(count)
        return out

    def _merge_rules(self, alerts: Sequence[StoredAlert], now: float) -> list[StoredAlert]:
        accepted = []
        for alert in alerts:
            outcome, merged = self._held.engine.alerts.put(alert, now)
            self._metrics.alerts_received.labels(AlertSource.RULE.value, outcome.value).inc()
            if outcome is not IngestOutcome.LIMITED and merged is not None:
                accepted.append(merged)
        return accepted

    def _from_rule(self, alert: AlertInstance, now: float, trace: str) -> StoredAlert | None:
        if alert.state is AlertState.FIRING:
            ends = None
        elif alert.state is AlertState.RESOLVED:
            ends = alert.resolved_at if alert.resolved_at is not None else now
        else:
            return None  # pending alerts are never sent, as in Prometheus
        return StoredAlert(
            fingerprint=alert.fingerprint,
            labels=alert.labels,
            annotations=alert.annotations,
            starts_at=alert.active_at if alert.active_at is not None else now,
            ends_at=ends,
            updated_at=now,
            generator_url=f"{self._external_url}/api/v1/rules?name={alert.rule}",
            source=AlertSource.RULE,
            trace=trace,
        )
