"""The signals consumer: evaluate the rules on each batch under the engine lock, then,
after it, make the results durable and route them (``EngineState.write_rules``). Signals
whose text could not be stored (NUL) or whose times are out of range are dead-lettered
first (``screening``).

Evaluation renders the rules' label and annotation templates, user code under a budget;
it runs in the render threads so the event loop (API, heartbeats, other consumers) keeps
running while a heavy template renders. A rule reload replaces the evaluator under the
same engine lock, so it never copies an evaluator's state halfway through an evaluation."""

from __future__ import annotations

from collections.abc import Sequence

from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen, Transition
from alert_engine.pipeline.screening import check_signal, screen
from alert_engine.pipeline.state import EngineState
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler
from opsmesh.templating import render_off_loop


def evaluate(
    evaluator: Evaluator, batch: Sequence[Received[SignalObserved]], now: float
) -> tuple[list[Transition], list[AlertInstance], list[SeriesSeen]]:
    transitions = [t for record in batch for t in evaluator.observe(record.event, now)]
    # Time-driven rules (absence, quiet periods, keep_firing_for ending) are
    # evaluated every poll, whether or not signals arrived.
    transitions.extend(evaluator.tick(now))
    return transitions, evaluator.take_updates(), evaluator.take_series_updates()


class EvaluateStage(StatelessHandler):
    def __init__(self, state: EngineState) -> None:
        self._state = state

    async def handle(self, batch: Sequence[Received[SignalObserved]]) -> BatchResult:
        state = self._state
        await state.restored.wait()
        good, rejected = screen(batch, check_signal)
        async with state.lock:
            now = state.clock.now()
            transitions, updates, seen = await render_off_loop(evaluate, state.evaluator, good, now)
            work = state.evaluated(transitions, updates, seen)
        await state.write_rules(work)  # PostgreSQL and Kafka, outside the lock
        return BatchResult(rejected=rejected)
