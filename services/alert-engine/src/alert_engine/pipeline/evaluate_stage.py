"""The signals consumer: evaluate the rules on each batch (``EngineState.evaluate``: under
the engine lock, in the render threads), then, after the lock, make the results durable
and route them (``EngineState.write_rules``). Signals whose text could not be stored (NUL)
or whose times are out of range are dead-lettered first (``screening``).

Trace: each transition remembers the ``traceparent`` of the signal that caused it ("" for
time-driven ones), and an alert the one of the signal that fired it (``AlertInstance``)."""

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
        work = await state.evaluate(good)
        await state.write_rules(work)  # PostgreSQL and Kafka, outside the lock
        return BatchResult(rejected=rejected)
