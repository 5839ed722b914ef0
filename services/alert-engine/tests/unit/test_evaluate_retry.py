"""The evaluate stage through the Kafka kit's HandlerRunner, with each durable step of a
rule evaluation failing once (PostgreSQL or the broker refusing) before it passes, or
with the process killed at that step and restarted over the same stores.

The evaluator's state moves on as soon as a batch is evaluated, so the retry of the same
batch evaluates to nothing new: what the failed call had to write must stay queued and be
written by the retry. Every transition is then recorded, published and routed exactly
once, whichever step failed. After a kill, the restart restores the evaluator from the
stored rule state and replays the batch: that state must not be ahead of what was routed,
or the replay finds the transition made and routes nothing."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import default_config
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen, Transition
from alert_engine.core.rules import Comparison, Rule, RuleKind
from alert_engine.core.silences import Silences
from alert_engine.pipeline.evaluate_stage import EvaluateStage
from alert_engine.pipeline.state import EngineState, Stores
from alert_engine.receiver_limits import Limits, ReceiverLimiter
from opsmesh.events.alerts import AlertsRouted, AlertState, AlertStateChanged
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.handler import Received
from opsmesh.kafka.handling import HandlerRunner
from opsmesh.kafka.producer import Outgoing
from opsmesh.kafka.stall import StallWatch
from opsmesh.ratelimit import MemoryRateLimiter
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_000.0


class Step(enum.StrEnum):
    RULES = "rule state and history"
    SERIES = "series last seen"
    ALERTS = "stored alert rows"
    EVENTS = "state events"
    ROUTING = "routing records handed to the producer"
    ACKS = "routing records acknowledged"


class Killed(BaseException):
    """SIGKILL: nothing catches it, nothing after it runs (a new process restarts)."""


class Faults:
    """Which step refuses its next call (once), or is where the process is killed."""

    def __init__(self, step: Step | None, *, kill: bool = False) -> None:
        self.pending = step
        self.kill = kill
        self.failed: list[Step] = []

    def check(self, step: Step) -> None:
        if self.pending is step:
            self.pending = None
            self.failed.append(step)
            if self.kill:
                raise Killed(step)
            raise ConnectionRefusedError(111, f"{step}: connection refused")


class RuleStore:
    """Rule state (what a restart restores the evaluator from) and its history."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.recorded: list[tuple[str, AlertState]] = []
        self.state: dict[str, AlertInstance] = {}

    async def record(
        self, transitions: Sequence[Transition], updates: Sequence[AlertInstance] = ()
    ) -> None:
        self.faults.check(Step.RULES)
        self.recorded.extend((t.alert.rule, t.alert.state) for t in transitions)
        for alert in [*(t.alert for t in transitions), *updates]:
            self.state[alert.fingerprint] = alert

    async def load(self) -> list[AlertInstance]:
        return list(self.state.values())


class SeriesStore:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.saved: list[SeriesSeen] = []

    async def save(self, seen: Sequence[SeriesSeen]) -> None:
        self.faults.check(Step.SERIES)
        self.saved.extend(seen)

    async def load(self) -> list[SeriesSeen]:
        return list(self.saved)


class ActiveAlertStore:
    """The stored alert rows; with the (empty) silences, notification log and rule groups a
    restart reads too."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.saved: list[StoredAlert] = []
        self.rows: dict[str, StoredAlert] = {}

    async def save(self, alerts: Sequence[StoredAlert], *_: Any, **__: Any) -> None:
        self.faults.check(Step.ALERTS)
        self.saved.extend(alerts)
        self.rows.update((a.fingerprint, a) for a in alerts)

    async def load(self, *_: Any, **__: Any) -> list[StoredAlert]:
        return list(self.rows.values())

    async def load_silences(self) -> list[Any]:
        return []

    async def version(self) -> tuple[int, float]:
        return (0, 0.0)


class Log(ActiveAlertStore):
    async def load(self, *_: Any, **__: Any) -> dict[Any, Any]:  # type: ignore[override]
        return {}


class Producer:
    """State events (``publish_many``) and routing records (``enqueue``, via the outbox)."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self.events: list[AlertStateChanged] = []
        self.routed: list[str] = []
        self.resolved: list[bool] = []  # per routing record: its alert has ended

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
            if self._faults.pending is Step.ACKS and self._faults.kill:
                self._note(record)  # on the broker; the process dies before it learns so
                self._faults.check(Step.ACKS)
            if self._faults.pending is Step.ACKS:
                self._faults.pending = None
                self._faults.failed.append(Step.ACKS)
                ack.set_exception(ConnectionRefusedError(111, "not acknowledged"))
            else:
                ack.set_result(None)
                self._note(record)
            acks.append(ack)
        return acks

    def _note(self, record: Outgoing) -> None:
        if isinstance(record.event, AlertsRouted):
            self.routed.extend(a.fingerprint for a in record.event.alerts)
            self.resolved.extend(a.ends_at is not None for a in record.event.alerts)


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
    """One engine process over stores and a broker that outlive it (``restarted``)."""

    def __init__(self, step: Step | None, *, kill: bool = False) -> None:
        self.faults = Faults(step, kill=kill)
        self.clock = FakeClock(T0)
        self.rules = RuleStore(self.faults)
        self.series = SeriesStore(self.faults)
        self.active = ActiveAlertStore(self.faults)
        self.producer = Producer(self.faults)
        self.start()

    def restarted(self) -> World:
        """A new process: fresh memory over the same PostgreSQL, Kafka and clock."""
        after = object.__new__(World)
        after.faults = Faults(None)
        after.clock = self.clock
        after.rules, after.series, after.active = self.rules, self.series, self.active
        after.producer = self.producer
        for part in (after.rules, after.series, after.active):
            part.faults = after.faults
        after.producer._faults = after.faults
        after.start()
        return after

    def start(self) -> None:
        self.state = EngineState(
            engine=Engine(default_config(group_by=("alertname",)), ActiveAlerts(), Silences()),
            evaluator=Evaluator(RULES),
            file_rules=RULES,
            stores=Stores(
                rules=self.rules,  # type: ignore[arg-type]
                series=self.series,  # type: ignore[arg-type]
                active=self.active,  # type: ignore[arg-type]
                log=Log(self.faults),  # type: ignore[arg-type]
                rule_groups=Log(self.faults),  # type: ignore[arg-type]
            ),
            producer=self.producer,  # type: ignore[arg-type]
            limiter=ReceiverLimiter(MemoryRateLimiter(self.clock.now), Limits()),
            clock=self.clock,
            registry=CollectorRegistry(),
            external_url="http://engine",
        )
        self.wait = Wait(self.clock)
        self.runner = HandlerRunner(
            EvaluateStage(self.state),
            watch=StallWatch(stall_after_s=30.0, give_up_after_s=300.0),
            clock=self.clock,
            retry_initial_s=0.5,
            retry_max_s=5.0,
            wait=self.wait,
        )

    async def restore(self) -> None:
        await self.state.restore()

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
    await world.restore()

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
    (fingerprint,) = {a.fingerprint for a in world.active.saved}
    assert [a.ends_at is None for a in world.active.saved] == [True, False]
    assert world.producer.routed == [fingerprint, fingerprint]
    # When the series was last seen: after each batch (a retry saw it again, a bit later;
    # an upsert, so writing it again is harmless).
    seen = [s.last_seen for s in world.series.saved]
    assert seen == sorted(seen)
    assert seen[0] < T0 + 60 <= seen[-1]


@pytest.mark.parametrize("step", list(Step), ids=[s.name.lower() for s in Step])
@pytest.mark.parametrize("resolving", [False, True], ids=["firing", "resolving"])
async def test_a_kill_at_any_step_of_a_write_is_made_good_by_the_replay(
    step: Step, resolving: bool
) -> None:
    world = World(None)
    await world.restore()
    if resolving:
        await world.run(0.95)
        world.clock.advance(60)
    world.faults = world.rules.faults = world.series.faults = world.active.faults = Faults(
        step, kill=True
    )
    world.producer._faults = world.faults
    value = 0.5 if resolving else 0.95
    with pytest.raises(Killed):
        await world.run(value)  # killed mid-write: the batch is not committed

    after = world.restarted()
    await after.restore()
    await after.run(value)  # the replay from the last commit

    (fingerprint,) = set(after.producer.routed)
    assert after.producer.resolved[-1] is resolving, "the last routed version is the new one"
    assert (after.active.rows[fingerprint].ends_at is not None) is resolving
    assert after.rules.state[fingerprint].state is (
        AlertState.RESOLVED if resolving else AlertState.FIRING
    )
