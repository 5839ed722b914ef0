"""The evaluate stage through the Kafka kit's HandlerRunner, with each durable step of a
rule evaluation failing once (PostgreSQL or the broker refusing) before it passes.

The evaluator's state moves on as soon as a batch is evaluated, so the retry of the same
batch evaluates to nothing new: what the failed call had to write must stay queued and be
written by the retry. Every transition is then recorded, published and routed exactly
once, whichever step failed."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import default_config
from alert_engine.core.book import AlertBook
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen, Transition
from alert_engine.core.rules import Comparison, Rule, RuleKind
from alert_engine.core.silences import SilenceBook
from alert_engine.pipeline.evaluate_stage import EvaluateStage
from alert_engine.pipeline.state import EngineState
from alert_engine.ratelimit import Limits, MemoryTokenBuckets
from opsmesh.clock import FakeClock
from opsmesh.events.alerts import AlertsRouted, AlertState, AlertStateChanged
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.handler import Received
from opsmesh.kafka.handling import HandlerRunner
from opsmesh.kafka.producer import Outgoing
from opsmesh.kafka.stall import StallWatch

T0 = 1_700_000_000.0


class Step(enum.StrEnum):
    RULES = "rule state and history"
    SERIES = "series last seen"
    BOOK = "book rows"
    EVENTS = "state events"
    ROUTING = "routing records handed to the producer"
    ACKS = "routing records acknowledged"


class Faults:
    """Which step refuses its next call (once)."""

    def __init__(self, step: Step | None) -> None:
        self.pending = step
        self.failed: list[Step] = []

    def check(self, step: Step) -> None:
        if self.pending is step:
            self.pending = None
            self.failed.append(step)
            raise ConnectionRefusedError(111, f"{step}: connection refused")


class RuleStore:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self.recorded: list[tuple[str, AlertState]] = []

    async def record(
        self, transitions: Sequence[Transition], updates: Sequence[AlertInstance] = ()
    ) -> None:
        self._faults.check(Step.RULES)
        self.recorded.extend((t.alert.rule, t.alert.state) for t in transitions)

    async def load(self) -> list[AlertInstance]:
        return []


class SeriesStore:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self.saved: list[SeriesSeen] = []

    async def save(self, seen: Sequence[SeriesSeen]) -> None:
        self._faults.check(Step.SERIES)
        self.saved.extend(seen)

    async def load(self) -> list[SeriesSeen]:
        return []


class BookStore:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self.saved: list[StoredAlert] = []

    async def save(self, alerts: Sequence[StoredAlert], *_: Any, **__: Any) -> None:
        self._faults.check(Step.BOOK)
        self.saved.extend(alerts)


class Producer:
    """State events (``publish_many``) and routing records (``enqueue``, via the outbox)."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self.events: list[AlertStateChanged] = []
        self.routed: list[str] = []

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        records = list(items)
        self._faults.check(Step.EVENTS)
        self.events.extend(r.event for r in records if isinstance(r.event, AlertStateChanged))

    async def enqueue(self, items: Iterable[Outgoing]) -> list[asyncio.Future[Any]]:
        records = list(items)
        self._faults.check(Step.ROUTING)
        loop = asyncio.get_running_loop()
        acks: list[asyncio.Future[Any]] = []
        for record in records:
            ack = loop.create_future()
            if self._faults.pending is Step.ACKS:
                self._faults.pending = None
                self._faults.failed.append(Step.ACKS)
                ack.set_exception(ConnectionRefusedError(111, "not acknowledged"))
            else:
                ack.set_result(None)
                if isinstance(record.event, AlertsRouted):
                    self.routed.extend(a.fingerprint for a in record.event.alerts)
            acks.append(ack)
        return acks


class Wait:
    """The runner's backoff in simulated time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits = 0

    async def __call__(self, stop: asyncio.Event, seconds: float) -> bool:
        self.waits += 1
        self.clock.advance(seconds)
        return False


RULES = [
    Rule(name="CpuHot", signal="cpu", op=Comparison.GT, threshold=0.9),
    # Absence rules remember when each series was last seen (the series store).
    Rule(name="CpuGone", signal="cpu", kind=RuleKind.ABSENCE, absent_for_s=600),
]


class World:
    def __init__(self, step: Step | None) -> None:
        self.faults = Faults(step)
        self.clock = FakeClock(T0)
        self.rules = RuleStore(self.faults)
        self.series = SeriesStore(self.faults)
        self.book = BookStore(self.faults)
        self.producer = Producer(self.faults)
        self.state = EngineState(
            engine=Engine(default_config(group_by=("alertname",)), AlertBook(), SilenceBook()),
            evaluator=Evaluator(RULES),
            rule_store=self.rules,  # type: ignore[arg-type]
            series_store=self.series,  # type: ignore[arg-type]
            book_store=self.book,  # type: ignore[arg-type]
            notification_log=None,  # type: ignore[arg-type]
            rule_groups=None,  # type: ignore[arg-type]
            producer=self.producer,  # type: ignore[arg-type]
            limiter=MemoryTokenBuckets(Limits()),
            clock=self.clock,
            registry=CollectorRegistry(),
            external_url="http://engine",
        )
        self.state.restored.set()
        self.wait = Wait(self.clock)
        self.runner = HandlerRunner(
            EvaluateStage(self.state),
            watch=StallWatch(stall_after_s=30.0, give_up_after_s=300.0),
            clock=self.clock,
            retry_initial_s=0.5,
            retry_max_s=5.0,
            wait=self.wait,
        )

    async def run(self, *values: float) -> None:
        batch = [Received(signal(v), message=None) for v in values]
        handled = await self.runner.run(batch, asyncio.Event())
        assert handled is not None
        assert not handled.poison, "a transient failure is retried, never dead-lettered"


def signal(value: float) -> SignalObserved:
    return SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name="cpu",
        subject="cpu",
        labels={"host": "a"},
        value=value,
        stats={},
        observed_at=T0,
    )


@pytest.mark.parametrize("step", list(Step), ids=[s.name.lower() for s in Step])
async def test_a_step_that_fails_once_is_retried_and_each_output_appears_once(
    step: Step,
) -> None:
    world = World(step)

    await world.run(0.95)  # CpuHot fires at once (no ``for``)
    world.clock.advance(60)
    await world.run(0.5)  # and resolves

    assert world.faults.failed == [step], "the step failed once, and the batch was retried"
    assert world.wait.waits == 1
    assert world.rules.recorded == [
        ("CpuHot", AlertState.FIRING),
        ("CpuHot", AlertState.RESOLVED),
    ]
    assert [(e.rule, e.state) for e in world.producer.events] == world.rules.recorded
    (fingerprint,) = {a.fingerprint for a in world.book.saved}
    assert [a.ends_at is None for a in world.book.saved] == [True, False]
    assert world.producer.routed == [fingerprint, fingerprint]
    # When the series was last seen: after each batch (a retry saw it again, a bit later;
    # an upsert, so writing it again is harmless).
    seen = [s.last_seen for s in world.series.saved]
    assert seen == sorted(seen)
    assert seen[0] < T0 + 60 <= seen[-1]
