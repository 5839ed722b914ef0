"""The signals consumer: evaluate the rules on each batch and hand the results to the
engine state (which makes them durable and routes them).

Evaluation renders the rules' label and annotation templates, user code under a budget;
it runs in the render threads so the event loop (API, heartbeats, other consumers) keeps
running while a heavy template renders."""

from __future__ import annotations

from collections.abc import Sequence

from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen, Transition
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
        async with state.lock:
            now = state.clock.now()
            # ``evaluating``: a rule reload must not copy the evaluator's state halfway
            # through an evaluation in the other thread.
            async with state.evaluating:
                transitions, updates, seen = await render_off_loop(
                    evaluate, state.evaluator, batch, now
                )
            await state.on_transitions(transitions, updates, seen)
        return BatchResult()
