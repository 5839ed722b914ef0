"""HandlerRunner in simulated time: transient failures retried with backoff and a bound,
deterministic ones bisected down to the records that fail on their own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
import pytest
from aiokafka.structs import ConsumerRecord

from opsmesh.events import MetricSampled
from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh.kafka.failures import FailureClass
from opsmesh.kafka.handler import BatchResult, Received, Rejection, StatelessHandler
from opsmesh.kafka.handling import ConsumerStalled, Handled, HandlerRunner
from opsmesh.kafka.stall import StallWatch
from opsmesh_dev.testing.clock import FakeClock

TOPIC = "opsmesh.metrics"
NUL = psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")


def received(offset: int, partition: int = 0) -> Received[MetricSampled]:
    event = MetricSampled(name="cpu", value=float(offset), sampled_at=1.0)
    message = ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=1_700_000_000_000,
        timestamp_type=0,
        key=f"k{offset}".encode(),
        value=f"v{offset}".encode(),
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=3,
        headers=[("origin", b"test")],
    )
    return Received(event, message)


def batch(*offsets: int) -> list[Received[MetricSampled]]:
    return [received(o) for o in offsets]


class SimulatedWait:
    """The runner's backoff wait in simulated time: advances the clock, records the
    delay, and may set the stop event after a number of waits."""

    def __init__(self, clock: FakeClock, stop_after: int | None = None) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.stop_after = stop_after

    async def __call__(self, stop: asyncio.Event, seconds: float) -> bool:
        self.delays.append(seconds)
        self.clock.advance(seconds)
        if self.stop_after is not None and len(self.delays) >= self.stop_after:
            stop.set()
        return stop.is_set()


@dataclass
class Store(StatelessHandler):
    """A handler over a store that refuses some records (NUL bytes), may be down for a
    number of calls, and may fail its time-driven work (calls without records)."""

    poison: set[int] = field(default_factory=set)
    down_for: int = 0
    empty_fails: int = 0
    stored: list[int] = field(default_factory=list)
    calls: list[list[int]] = field(default_factory=list)

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        offsets = [r.offset for r in batch]
        self.calls.append(offsets)
        if self.down_for > 0:
            self.down_for -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        if not batch and self.empty_fails > 0:
            self.empty_fails -= 1
            raise KeyError("window state")
        if self.poison & set(offsets):
            raise NUL  # the whole transaction fails: nothing of this call is stored
        self.stored.extend(offsets)
        return BatchResult(
            hold_from={(TOPIC, 0): min(offsets)} if offsets else {},
            commit_metadata={(TOPIC, 0): f"to-{max(offsets)}"} if offsets else {},
        )


def runner(
    handler: StatelessHandler,
    clock: FakeClock,
    wait: SimulatedWait,
    *,
    stall_after_s: float = 30.0,
    give_up_after_s: float = 300.0,
) -> tuple[HandlerRunner[MetricSampled], StallWatch, list[FailureClass]]:
    watch = StallWatch(stall_after_s, give_up_after_s)
    seen: list[FailureClass] = []
    run = HandlerRunner(
        handler,  # type: ignore[arg-type]
        watch=watch,
        clock=clock,
        retry_initial_s=0.2,
        retry_max_s=10.0,
        wait=wait,
        observe=lambda failure_class, exc, records: seen.append(failure_class),
    )
    return run, watch, seen


async def test_a_batch_that_succeeds_is_handled_once() -> None:
    clock = FakeClock()
    store = Store()
    run, _, seen = runner(store, clock, SimulatedWait(clock))
    handled = await run.run(batch(0, 1, 2), asyncio.Event())
    assert handled == Handled(
        BatchResult(hold_from={(TOPIC, 0): 0}, commit_metadata={(TOPIC, 0): "to-2"})
    )
    assert store.calls == [[0, 1, 2]]
    assert seen == []


async def test_a_transient_failure_retries_the_same_batch_with_exponential_backoff() -> None:
    clock = FakeClock()
    store = Store(down_for=4)
    wait = SimulatedWait(clock)
    run, watch, seen = runner(store, clock, wait)
    handled = await run.run(batch(0, 1, 2), asyncio.Event())
    assert handled is not None
    assert handled.poison == []
    assert store.calls == [[0, 1, 2]] * 5, "the same batch each time, never split"
    assert store.stored == [0, 1, 2]
    assert wait.delays == [0.2, 0.4, 0.8, 1.6]
    assert seen == [FailureClass.TRANSIENT] * 4
    assert watch.since is None, "a call that returned is progress"


async def test_the_backoff_is_capped_and_the_stall_shows_before_the_bound() -> None:
    clock = FakeClock()
    store = Store(down_for=1_000_000)
    wait = SimulatedWait(clock)
    run, watch, _ = runner(store, clock, wait, stall_after_s=30.0, give_up_after_s=120.0)
    reasons: list[str | None] = []

    async def observing_wait(stop: asyncio.Event, seconds: float) -> bool:
        reasons.append(watch.stalled(clock.monotonic()))
        return await wait(stop, seconds)

    run._wait = observing_wait
    with pytest.raises(ConsumerStalled) as raised:
        await run.run(batch(0), asyncio.Event())
    assert max(wait.delays) == 10.0
    assert clock.monotonic() == pytest.approx(120.0), "gave up at the bound, not later"
    assert reasons[0] is None, "not stalled at the first failures"
    stalled = [r for r in reasons if r is not None]
    assert stalled, "stalled before giving up"
    assert "transient" in stalled[-1]
    assert "ConnectionRefusedError" in stalled[-1]
    assert "ConnectionRefusedError" in str(raised.value)
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


async def test_a_stop_ends_the_backoff_and_nothing_is_returned_to_commit() -> None:
    clock = FakeClock()
    store = Store(down_for=1_000_000)
    wait = SimulatedWait(clock, stop_after=3)
    run, _, _ = runner(store, clock, wait)
    assert await run.run(batch(0, 1), asyncio.Event()) is None
    assert len(store.calls) == 3


async def test_one_poison_record_among_many_is_isolated_and_the_rest_handled_once() -> None:
    clock = FakeClock()
    store = Store(poison={37})
    wait = SimulatedWait(clock)
    run, _, seen = runner(store, clock, wait)
    records = batch(*range(100))
    handled = await run.run(records, asyncio.Event())
    assert handled is not None
    assert [r.raw.offset for r in handled.poison] == [37]
    (poison,) = handled.poison
    assert poison.reason is DeadLetterReason.HANDLER_FAILED
    assert poison.error == f"psycopg.DataError: {NUL}"
    assert poison.error_class == "psycopg.DataError"
    assert poison.raw.value == b"v37", "the original bytes go to the DLQ"
    assert poison.raw.headers == (("origin", b"test"),)
    assert store.stored == [o for o in range(100) if o != 37], "each other record once, in order"
    assert wait.delays == [], "a deterministic failure is not waited on"
    assert FailureClass.TRANSIENT not in seen
    # probe + whole batch again + about two calls per halving
    assert len(store.calls) < 2 + 2 * 8


async def test_several_poison_records_are_each_isolated() -> None:
    clock = FakeClock()
    store = Store(poison={0, 5, 6, 99})
    run, _, _ = runner(store, clock, SimulatedWait(clock))
    handled = await run.run(batch(*range(100)), asyncio.Event())
    assert handled is not None
    assert [r.raw.offset for r in handled.poison] == [0, 5, 6, 99]
    assert store.stored == [o for o in range(100) if o not in {0, 5, 6, 99}]


async def test_a_single_poison_record_alone_in_its_batch_is_dead_lettered() -> None:
    clock = FakeClock()
    store = Store(poison={7})
    run, _, _ = runner(store, clock, SimulatedWait(clock))
    handled = await run.run(batch(7), asyncio.Event())
    assert handled is not None
    assert [r.raw.offset for r in handled.poison] == [7]
    assert store.calls == [[7], [], [7]], "tried, time-driven work alone, tried again"


async def test_the_merged_result_keeps_every_rejection_and_the_latest_hold() -> None:
    @dataclass
    class Rejecting(Store):
        async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
            result = await super().handle(batch)
            result.rejected = [
                Rejection(r.raw, DeadLetterReason.SCHEMA_VIOLATION, "odd")
                for r in batch
                if r.offset % 2
            ]
            return result

    clock = FakeClock()
    store = Rejecting(poison={4})
    run, _, _ = runner(store, clock, SimulatedWait(clock))
    handled = await run.run(batch(*range(8)), asyncio.Event())
    assert handled is not None
    assert sorted(r.raw.offset for r in handled.result.rejected) == [1, 3, 5, 7]
    assert handled.result.hold_from == {(TOPIC, 0): 6}, "the last call's report"
    assert handled.result.commit_metadata == {(TOPIC, 0): "to-7"}


async def test_a_failure_no_record_is_to_blame_for_is_retried_not_dead_lettered() -> None:
    clock = FakeClock()
    # Fails with records and without: its time-driven work is broken for 3 calls.
    store = Store(empty_fails=3)
    original = store.handle

    async def broken_then_fine(batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        if store.empty_fails > 0 and batch:
            store.calls.append([r.offset for r in batch])
            raise KeyError("window state")
        return await original(batch)

    store.handle = broken_then_fine  # type: ignore[method-assign]
    wait = SimulatedWait(clock)
    run, _, seen = runner(store, clock, wait)
    handled = await run.run(batch(0, 1, 2), asyncio.Event())
    assert handled is not None
    assert handled.poison == [], "no record is dead-lettered for the handler's own failure"
    assert store.stored == [0, 1, 2]
    assert wait.delays == [0.2, 0.4, 0.8], "the empty calls back off"
    assert seen == [FailureClass.DETERMINISTIC] * 4


async def test_a_deterministic_failure_without_records_stalls_then_gives_up() -> None:
    clock = FakeClock()
    store = Store(empty_fails=1_000_000)
    wait = SimulatedWait(clock)
    run, watch, _ = runner(store, clock, wait, stall_after_s=30.0, give_up_after_s=60.0)
    with pytest.raises(ConsumerStalled, match="deterministic"):
        await run.run([], asyncio.Event())
    assert clock.monotonic() == pytest.approx(60.0)
    assert watch.stalled(clock.monotonic()) is not None


async def test_records_that_only_fail_together_are_all_handled() -> None:
    @dataclass
    class Conflicting(Store):
        """Fails a call holding both 2 and 5 (two upserts of one row in one statement)."""

        async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
            if {2, 5} <= {r.offset for r in batch}:
                self.calls.append([r.offset for r in batch])
                raise psycopg.errors.CardinalityViolation("cannot affect row a second time")
            return await super().handle(batch)

    clock = FakeClock()
    store = Conflicting()
    run, _, _ = runner(store, clock, SimulatedWait(clock))
    handled = await run.run(batch(*range(8)), asyncio.Event())
    assert handled is not None
    assert handled.poison == []
    assert store.stored == list(range(8))


async def test_a_transient_failure_while_bisecting_is_retried_in_place() -> None:
    @dataclass
    class Flaky(Store):
        flake_on_call: int = 4

        async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
            if len(self.calls) == self.flake_on_call:
                self.calls.append([r.offset for r in batch])
                raise TimeoutError("statement timeout")
            return await super().handle(batch)

    clock = FakeClock()
    store = Flaky(poison={3})
    wait = SimulatedWait(clock)
    run, _, _ = runner(store, clock, wait)
    handled = await run.run(batch(*range(8)), asyncio.Event())
    assert handled is not None
    assert [r.raw.offset for r in handled.poison] == [3]
    assert store.stored == [0, 1, 2, 4, 5, 6, 7]
    assert wait.delays == [0.2]


async def test_a_handler_may_declare_its_own_failure_transient() -> None:
    @dataclass
    class NotWarm(Store):
        cold_calls: int = 2

        def classify_failure(self, exc: BaseException) -> FailureClass | None:
            return FailureClass.TRANSIENT if isinstance(exc, LookupError) else None

        async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
            if self.cold_calls:
                self.cold_calls -= 1
                self.calls.append([r.offset for r in batch])
                raise LookupError("state not loaded")
            return await super().handle(batch)

    clock = FakeClock()
    store = NotWarm()
    wait = SimulatedWait(clock)
    run, _, seen = runner(store, clock, wait)
    handled = await run.run(batch(0, 1), asyncio.Event())
    assert handled is not None
    assert handled.poison == []
    assert store.calls == [[0, 1]] * 3
    assert seen == [FailureClass.TRANSIENT] * 2
