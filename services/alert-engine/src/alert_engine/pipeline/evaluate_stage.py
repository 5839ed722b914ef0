"""The signals consumer: evaluate the rules on each batch and hand the results to the
engine state (which makes them durable and routes them)."""

from __future__ import annotations

from collections.abc import Sequence

from alert_engine.pipeline.state import EngineState
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler


class EvaluateStage(StatelessHandler):
    def __init__(self, state: EngineState) -> None:
        self._state = state

    async def handle(self, batch: Sequence[Received[SignalObserved]]) -> BatchResult:
        state = self._state
        await state.restored.wait()
        async with state.lock:
            now = state.clock.now()
            evaluator = state.evaluator
            transitions = [t for record in batch for t in evaluator.observe(record.event, now)]
            tick = getattr(evaluator, "tick", None)
            if tick is not None:  # time-driven rules (absence) need an evaluation every poll
                transitions.extend(tick(now))
            await state.on_transitions(transitions, evaluator.take_updates())
        return BatchResult()
