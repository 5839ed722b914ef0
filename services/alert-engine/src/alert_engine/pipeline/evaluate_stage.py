"""The signals consumer: evaluate the rules on each batch under the engine lock, then,
after it, make the results durable and route them (``EngineState.write_rules``). Signals
whose text could not be stored (NUL) or whose times are out of range are dead-lettered
first (``screening``).

Evaluation renders the rules' label and annotation templates, user code under a budget;
it runs in the render threads so the event loop (API, heartbeats, other consumers) keeps
running while a heavy template renders. A rule reload replaces the evaluator under the
same engine lock, so it never copies an evaluator's state halfway through an evaluation.

Trace: each transition remembers the ``traceparent`` of the signal that caused it ("" for
time-driven ones), and an alert the one of the signal that fired it (``AlertInstance``)."""

from __future__ import annotations

from collections.abc import Sequence

from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen, Transition
from alert_engine.pipeline.screening import check_signal, screen
from alert_engine.pipeline.state import EngineState
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler
from opsmesh.templating import render_off_loop
from opsmesh.tracing.context import traceparent_of

_SIZE = 55  # a version-00 traceparent; anything else is not kept

Evaluated = tuple[list[Transition], list[str], list[AlertInstance], list[SeriesSeen]]


def evaluate(
    evaluator: Evaluator, batch: Sequence[Received[SignalObserved]], now: float
) -> Evaluated:
    """Transitions, each one's cause (its signal's traceparent), state updates and series
    seen."""
    transitions: list[Transition] = []
    causes: list[str] = []
    for record in batch:
        event = record.event
        if not evaluator.watches(event.name):
            continue  # no rule reads it: not even its header is parsed
        # The header as sent, parsed only when it makes a transition (``evaluated``):
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


class EvaluateStage(StatelessHandler):
    def __init__(self, state: EngineState) -> None:
        self._state = state

    async def handle(self, batch: Sequence[Received[SignalObserved]]) -> BatchResult:
        state = self._state
        await state.restored.wait()
        good, rejected = screen(batch, check_signal)
        async with state.lock:
            now = state.clock.now()
            transitions, causes, updates, seen = await render_off_loop(
                evaluate, state.evaluator, good, now
            )
            work = state.evaluated(transitions, updates, seen, causes)
        await state.write_rules(work)  # PostgreSQL and Kafka, outside the lock
        return BatchResult(rejected=rejected)
