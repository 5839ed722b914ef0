"""Periodic: first-run timing, intervals, failures counted by class, prompt stop — in
simulated time (the wait advances a FakeClock and returns at once)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from opsmesh.periodic import FirstRun, InFlight, NextRun, Periodic, periodic_metrics
from opsmesh_dev.testing.clock import FakeClock


class World:
    def __init__(self, *, runs_before_stop: int) -> None:
        self.clock = FakeClock(0.0)
        self.stop = asyncio.Event()
        self.waits: list[float] = []
        self.ran_at: list[float] = []
        self.registry = CollectorRegistry()
        self.metrics = periodic_metrics(self.registry)
        self._left = runs_before_stop

    async def wait(self, stop: asyncio.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        return stop.is_set()

    def ran(self) -> None:
        self.ran_at.append(self.clock.now())
        self._left -= 1
        if self._left <= 0:
            self.stop.set()

    def failures(self, kind: str) -> float:
        value = self.registry.get_sample_value(
            "opsmesh_periodic_failures_total", {"loop": "job", "class": kind}
        )
        return value or 0.0


async def test_after_interval_waits_first_then_runs_every_interval() -> None:
    world = World(runs_before_stop=3)

    async def step() -> None:
        world.ran()

    loop = Periodic("job", step, 10.0, world.metrics, wait=world.wait)
    await loop.run(world.stop)
    assert world.ran_at == [10.0, 20.0, 30.0]


async def test_at_start_runs_at_once_then_every_interval() -> None:
    world = World(runs_before_stop=3)

    async def step() -> None:
        world.ran()

    loop = Periodic("job", step, 10.0, world.metrics, FirstRun.AT_START, wait=world.wait)
    await loop.run(world.stop)
    assert world.ran_at == [0.0, 10.0, 20.0]


async def test_a_stop_before_start_runs_nothing() -> None:
    world = World(runs_before_stop=1)
    world.stop.set()

    async def step() -> None:
        world.ran()

    await Periodic("job", step, 10.0, world.metrics, FirstRun.AT_START, wait=world.wait).run(
        world.stop
    )
    assert world.ran_at == []


async def test_a_step_may_shorten_the_next_wait_and_the_interval_may_be_a_schedule() -> None:
    world = World(runs_before_stop=4)
    schedule = iter([5.0, 7.0, 9.0, 11.0])

    async def step() -> NextRun | int:
        world.ran()
        # A backlog: again at once. Any other result (a count) keeps the schedule.
        return NextRun(0.0) if len(world.ran_at) == 1 else 42

    loop = Periodic("job", step, lambda: next(schedule), world.metrics, wait=world.wait)
    await loop.run(world.stop)
    assert world.waits == [5.0, 0.0, 7.0, 9.0]


async def test_failures_are_counted_by_class_and_never_end_the_loop() -> None:
    world = World(runs_before_stop=4)
    errors: list[Exception | None] = [ConnectionError("refused"), KeyError("bug"), None]

    async def step() -> None:
        world.ran()
        error = errors.pop(0) if errors else None
        if error is not None:
            raise error

    await Periodic("job", step, 1.0, world.metrics, wait=world.wait).run(world.stop)
    assert world.ran_at == [1.0, 2.0, 3.0, 4.0]
    assert world.failures("transient") == 1
    assert world.failures("deterministic") == 1


async def test_the_metrics_are_declared_once_per_registry() -> None:
    registry = CollectorRegistry()
    assert periodic_metrics(registry) is periodic_metrics(registry)


async def test_a_stop_waits_for_a_run_in_flight_to_finish_by_default() -> None:
    world = World(runs_before_stop=99)
    finished = asyncio.Event()

    async def step() -> None:
        world.stop.set()  # the stop arrives mid-run
        await asyncio.sleep(0)
        finished.set()

    await Periodic("job", step, 1.0, world.metrics, wait=world.wait).run(world.stop)
    assert finished.is_set()
    assert world.waits == [1.0]


async def test_a_stop_abandons_a_run_in_flight_when_asked() -> None:
    world = World(runs_before_stop=99)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def step() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a dependency that never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = Periodic("job", step, 1.0, world.metrics, in_flight=InFlight.ABANDON, wait=world.wait)
    task = asyncio.create_task(loop.run(world.stop))
    await asyncio.wait_for(started.wait(), 1.0)
    world.stop.set()
    await asyncio.wait_for(task, 1.0)
    assert cancelled.is_set()
    assert world.failures("transient") == world.failures("deterministic") == 0


async def test_cancelling_the_loop_is_not_swallowed() -> None:
    world = World(runs_before_stop=99)
    started = asyncio.Event()

    async def step() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(
        Periodic("job", step, 1.0, world.metrics, wait=world.wait).run(world.stop)
    )
    await asyncio.wait_for(started.wait(), 1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_run_of_failures_is_logged_with_backoff_then_its_end() -> None:
    world = World(runs_before_stop=10)

    async def step() -> None:
        world.ran()
        if len(world.ran_at) <= 9:
            raise KeyError("bug")

    with capture_logs() as logs:
        await Periodic("job", step, 1.0, world.metrics, wait=world.wait).run(world.stop)
    failed = [e["failures"] for e in logs if e["event"].startswith("periodic loop failed")]
    assert failed == [1, 2, 4, 8]
    assert [e["failures"] for e in logs if e["event"] == "periodic loop recovered"] == [9]
    assert world.failures("deterministic") == 9
