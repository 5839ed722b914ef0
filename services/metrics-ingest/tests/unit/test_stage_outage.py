"""The rollup stage through the Kafka kit's HandlerRunner while PostgreSQL is down for
longer than the idle grace, with samples piling up on the broker meanwhile (the fault
suite's ``postgresql-down-35s``, in simulated time): once it is back, the windows that
closed during the outage are stored and signalled once, and the backlog read after it
lands in windows of its own, none of it counted late."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.closed import ClosedWindow
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import MemoryHistory, MemoryPublisher
from opsmesh.events.metrics import MetricSampledFields
from opsmesh.kafka.consumer import Partition, Received
from opsmesh.kafka.handling import HandlerRunner
from opsmesh.kafka.stall import StallWatch
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_400.0
P0 = ("opsmesh.metrics", 0)
OUTAGE_S = 35.0


class History(MemoryHistory):
    """Refuses every store while ``down`` (PostgreSQL stopped)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    async def store(self, windows: Sequence[ClosedWindow], now: float) -> int:
        if self.down:
            self.refused += 1
            raise ConnectionRefusedError(111, "Connection refused")
        return await super().store(windows, now)


class Progress:
    """The consumer's read progress: partitions with records still on the broker."""

    def __init__(self) -> None:
        self.behind: set[Partition] = set()

    def lagging(self) -> set[Partition]:
        return set(self.behind)


class Outage:
    """The runner's backoff in simulated time; PostgreSQL comes back after ``OUTAGE_S``."""

    def __init__(self, clock: FakeClock, history: History) -> None:
        self.clock = clock
        self.history = history
        self.until = clock.now() + OUTAGE_S

    async def __call__(self, stop: asyncio.Event, seconds: float) -> bool:
        self.clock.advance(seconds)
        if self.clock.now() >= self.until:
            self.history.down = False
        return False


def received(at: float, offset: int) -> Received[MetricSampledFields]:
    event = MetricSampledFields(name="ratio", value=0.9, labels={"id": "m1"}, sampled_at=at)
    message = ConsumerRecord(P0[0], P0[1], offset, 0, 0, b"m1", b"{}", None, -1, 2, ())
    return Received(event, message)


async def test_a_backlog_read_after_a_postgres_outage_is_not_late() -> None:
    clock = FakeClock(T0)
    history, signals, progress = History(), MemoryPublisher(), Progress()
    registry = CollectorRegistry()
    # The fault suite's settings: 1 s windows, 0.5 s lateness and idle grace.
    stage = RollupStage(
        rollups=Rollups(WindowConfig((1.0,), allowed_lateness_s=0.5, idle_grace_s=0.5)),
        history=history,
        producer=signals,
        clock=clock,
        registry=registry,
    )
    stage.watch_progress(progress)
    runner = HandlerRunner(
        stage,
        watch=StallWatch(stall_after_s=30.0, give_up_after_s=300.0),
        clock=clock,
        retry_initial_s=0.2,
        retry_max_s=10.0,
        wait=Outage(clock, history),
    )

    async def poll(batch: list[Received[MetricSampledFields]]) -> None:
        assert await runner.run(batch, asyncio.Event()) is not None

    offsets = iter(range(10_000))
    samples = 0

    def sampled(at: float) -> list[Received[MetricSampledFields]]:
        nonlocal samples
        samples += 1
        return [received(at, next(offsets))]

    await poll(sampled(T0 + 0.1))
    clock.advance(1.6)
    history.down = True  # PostgreSQL stops: the batch that closes [T0, T0 + 1) retries
    progress.behind = {P0}  # and the samples sent meanwhile pile up on the broker
    await poll(sampled(T0 + 1.6))
    assert history.refused > 1
    assert clock.now() >= T0 + OUTAGE_S

    # Back: the backlog, one sample every 0.2 s of the outage, read in batches of 20.
    backlog = [T0 + 1.8 + 0.2 * i for i in range(170)]
    for start in range(0, len(backlog), 20):
        batch = [r for at in backlog[start : start + 20] for r in sampled(at)]
        if start + 20 >= len(backlog):
            progress.behind = set()  # read to the end
        await poll(batch)
        clock.advance(0.05)
    clock.advance(2.0)  # quiet now, and read to the end: the last windows close
    await poll([])

    starts = [w.start for w in history.windows]
    assert starts == sorted(set(starts)), "each window stored once"
    assert sum(w.count for w in history.windows) == samples, "every sample in a window"
    late = registry.get_sample_value("metrics_ingest_samples_total", {"outcome": "late"})
    assert not late
    assert len(signals.items) == len(history.windows), "each window signalled once"
