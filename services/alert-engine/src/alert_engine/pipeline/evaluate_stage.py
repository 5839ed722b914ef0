"""The signals consumer: evaluate the rules on each batch under the engine lock, then,
after it, make the results durable and route them (``EngineState.write_rules``). Signals
whose text could not be stored (NUL) or whose times are out of range are dead-lettered
first (``screening``)."""

from __future__ import annotations

from collections.abc import Sequence

from alert_engine.pipeline.screening import check_signal, screen
from alert_engine.pipeline.state import EngineState
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler


class EvaluateStage(StatelessHandler):
    def __init__(self, state: EngineState) -> None:
        self._state = state

    async def handle(self, batch: Sequence[Received[SignalObserved]]) -> BatchResult:
        state = self._state
        await state.restored.wait()
        good, rejected = screen(batch, check_signal)
        async with state.lock:
            now = state.clock.now()
            evaluator = state.evaluator
            transitions = [t for record in good for t in evaluator.observe(record.event, now)]
            # Time-driven rules (absence, quiet periods, keep_firing_for ending) are
            # evaluated every poll, whether or not signals arrived.
            transitions.extend(evaluator.tick(now))
            work = state.evaluated(
                transitions, evaluator.take_updates(), evaluator.take_series_updates()
            )
        await state.write_rules(work)  # PostgreSQL and Kafka, outside the lock
        return BatchResult(rejected=rejected)
