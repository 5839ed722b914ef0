"""HealthStage through the Kafka kit's HandlerRunner, with a store and a producer that fail
for a while (PostgreSQL or the broker down) then recover: every status change is stored
and signalled exactly once, and the owned checks move only once the batch is stored."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from health_aggregator.core.checks import ChangeCause, CheckState, OwnedChecks, StatusChange
from health_aggregator.pipeline.health_stage import HealthStage
from opsmesh.events.health import HealthReported, HealthStatus
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.handler import Received
from opsmesh.kafka.handling import HandlerRunner
from opsmesh.kafka.producer import Outgoing
from opsmesh.kafka.stall import StallWatch
from opsmesh.topics import HEALTH
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_000.0
PASS, FAIL = HealthStatus.PASS, HealthStatus.FAIL
KEY = ("api", "i-1", "db")


class Store:
    """CheckStore's writes; refuses the next ``down_for`` saves (PostgreSQL down)."""

    def __init__(self) -> None:
        self.down_for = 0
        self.states: dict[tuple[str, str, str], CheckState] = {}
        self.history: list[tuple[tuple[str, str, str], HealthStatus, ChangeCause]] = []
        self.deregistered: dict[tuple[str, str, str], float] = {}

    async def save(
        self,
        states: Sequence[CheckState],
        changes: Sequence[StatusChange],
        deregistered: Sequence[tuple[CheckState, float]] = (),
    ) -> None:
        if self.down_for:
            self.down_for -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        self.states.update((s.key, s) for s in states)
        self.deregistered.update((s.key, at) for s, at in deregistered)
        self.history.extend((c.state.key, c.state.status, c.cause) for c in changes)

    async def load(self, partitions: Sequence[int]) -> list[CheckState]:
        return []


class Producer:
    """Signals acknowledged by the broker; refuses the next ``down_for`` publishes whole."""

    def __init__(self) -> None:
        self.down_for = 0
        self.sent: list[SignalObserved] = []

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        records = list(items)
        if self.down_for:
            self.down_for -= 1
            raise ConnectionRefusedError(111, "broker not available")
        self.sent.extend(r.event for r in records if isinstance(r.event, SignalObserved))

    def statuses(self) -> list[tuple[str, float, str]]:
        return [(s.subject, s.value, s.labels["cause"]) for s in self.sent]


class Wait:
    """The runner's backoff in simulated time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits = 0

    async def __call__(self, stop: asyncio.Event, seconds: float) -> bool:
        self.waits += 1
        self.clock.advance(seconds)
        return False


def report(
    status: HealthStatus, at: float, offset: int, ttl: float = 30.0
) -> Received[HealthReported]:
    event = HealthReported(
        service="api",
        instance="i-1",
        check="db",
        status=status,
        critical=True,
        ttl_s=ttl,
        reported_at=at,
    )
    message = ConsumerRecord(
        topic=HEALTH.name,
        partition=0,
        offset=offset,
        timestamp=int(at * 1000),
        timestamp_type=0,
        key=b"api/i-1",
        value=b"{}",
        checksum=None,
        serialized_key_size=7,
        serialized_value_size=2,
        headers=[],
    )
    return Received(event, message)


class World:
    def __init__(self, deregister_after_s: float = math.inf) -> None:
        self.clock = FakeClock(T0)
        self.owned = OwnedChecks()
        self.store = Store()
        self.producer = Producer()
        self.wait = Wait(self.clock)
        self.stage = HealthStage(
            owned=self.owned,
            store=self.store,  # type: ignore[arg-type]
            producer=self.producer,  # type: ignore[arg-type]
            clock=self.clock,
            registry=CollectorRegistry(),
            deregister_after_s=deregister_after_s,
        )
        self.runner = HandlerRunner(
            self.stage,
            watch=StallWatch(stall_after_s=30.0, give_up_after_s=300.0),
            clock=self.clock,
            retry_initial_s=0.5,
            retry_max_s=5.0,
            wait=self.wait,
        )

    async def run(self, *batch: Received[HealthReported]) -> None:
        handled = await self.runner.run(list(batch), asyncio.Event())
        assert handled is not None
        assert not handled.poison, "a transient failure is retried, never dead-lettered"


SUBJECT = "api/i-1/db"


async def test_a_change_whose_store_failed_once_is_stored_and_signalled_once() -> None:
    world = World()
    await world.run(report(PASS, T0, 0))
    world.store.down_for = 1  # PostgreSQL refuses the batch that turns the check to fail

    await world.run(report(FAIL, T0 + 1, 1))

    assert world.wait.waits == 1, "the batch was retried once"
    assert world.producer.statuses() == [
        (SUBJECT, 0.0, "reported"),
        (SUBJECT, 2.0, "reported"),
    ]
    assert world.store.history == [
        (KEY, PASS, ChangeCause.REPORTED),
        (KEY, FAIL, ChangeCause.REPORTED),
    ]
    state = world.owned.get(KEY)
    assert state is not None
    assert state.status is FAIL


async def test_a_ttl_expiry_whose_store_failed_is_stored_and_signalled_once() -> None:
    world = World()
    await world.run(report(PASS, T0, 0, ttl=10))
    world.clock.advance(10)
    world.store.down_for = 3  # the expiry's store fails three times, then passes

    await world.run()

    assert world.wait.waits == 3
    assert world.producer.statuses() == [
        (SUBJECT, 0.0, "reported"),
        (SUBJECT, 2.0, "ttl_expired"),
    ]
    assert world.store.history[1:] == [(KEY, FAIL, ChangeCause.TTL_EXPIRED)]
    assert world.store.states[KEY].status is FAIL


async def test_a_change_whose_signal_failed_is_signalled_once_and_stored_once() -> None:
    world = World()
    await world.run(report(PASS, T0, 0))
    world.producer.down_for = 2  # the broker refuses the signal twice

    await world.run(report(FAIL, T0 + 1, 1))

    assert world.producer.statuses()[1:] == [(SUBJECT, 2.0, "reported")]
    assert world.store.history[1:] == [(KEY, FAIL, ChangeCause.REPORTED)]


async def test_a_failed_store_leaves_the_owned_checks_as_it_was() -> None:
    world = World()
    await world.run(report(PASS, T0, 0, ttl=10))
    world.store.down_for = 1
    with pytest.raises(ConnectionRefusedError):
        await world.stage.handle([report(FAIL, T0 + 1, 1)])

    state = world.owned.get(KEY)
    assert state is not None
    assert (state.status, state.reported_at) == (PASS, T0)
    # Its deadline is still held: the check still expires when nothing more comes.
    assert [c.state.status for c in world.owned.expire(T0 + 10)] == [FAIL]


async def test_a_check_silent_past_its_ttl_for_deregister_after_is_deregistered_once() -> None:
    world = World(deregister_after_s=3_600)
    await world.run(report(PASS, T0, 0, ttl=10))
    world.clock.advance(10)
    await world.run()  # expires
    world.clock.advance(3_599)
    await world.run()
    assert world.owned.get(KEY) is not None, "not yet: the TTL ran out 3599 s ago"
    world.clock.advance(2)
    world.store.down_for = 1  # the first store of the deregistration fails

    await world.run()
    await world.run()

    assert world.producer.statuses() == [
        (SUBJECT, 0.0, "reported"),
        (SUBJECT, 2.0, "ttl_expired"),
        (SUBJECT, 0.0, "deregistered"),
    ]
    assert world.store.history[-1] == (KEY, FAIL, ChangeCause.DEREGISTERED)
    assert list(world.store.deregistered) == [KEY]
    assert world.store.deregistered[KEY] >= T0 + 3_611  # the retry's own time
    assert world.owned.get(KEY) is None
    assert len(world.owned) == 0


async def test_a_deregistered_check_that_reports_again_is_registered_again() -> None:
    world = World(deregister_after_s=60)
    await world.run(report(PASS, T0, 0, ttl=10))
    world.clock.advance(71)
    await world.run()
    assert world.owned.get(KEY) is None
    await world.run(report(PASS, T0 + 80, 1, ttl=10))
    state = world.owned.get(KEY)
    assert state is not None
    assert state.status is PASS
    assert world.producer.statuses()[-1] == (SUBJECT, 0.0, "reported")


async def test_a_check_that_keeps_reporting_fail_is_never_deregistered() -> None:
    world = World(deregister_after_s=60)
    for i in range(10):
        await world.run(report(FAIL, T0 + 30 * i, i, ttl=40))
        world.clock.advance(30)
    assert world.owned.get(KEY) is not None
    assert all(cause != "deregistered" for *_, cause in world.producer.statuses())


async def test_a_check_that_last_reported_fail_and_went_silent_is_deregistered() -> None:
    world = World(deregister_after_s=60)
    await world.run(report(FAIL, T0, 0, ttl=10))
    world.clock.advance(10)
    world.store.down_for = 1  # the store of the batch its TTL runs out in fails
    await world.run()  # retried after a simulated backoff
    assert world.wait.waits == 1
    world.clock.set(T0 + 10 + 60)
    await world.run()
    assert world.owned.get(KEY) is not None, "not yet: the TTL ran out 60 s ago"
    world.clock.advance(1)

    await world.run()

    assert world.producer.statuses() == [
        (SUBJECT, 2.0, "reported"),
        (SUBJECT, 0.0, "deregistered"),
    ]
    assert list(world.store.deregistered) == [KEY]
    assert world.owned.get(KEY) is None
