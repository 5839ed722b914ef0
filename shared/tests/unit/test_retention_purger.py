"""The purger's run over in-repo fake jobs, in simulated time: cutoffs from the injected
clock, bounded batches per run, one failing table never stopping the others, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from prometheus_client import CollectorRegistry

from opsmesh.db.retention import (
    Batch,
    Purger,
    PurgeStop,
    RetentionMetrics,
    days,
)
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_000_000_000.0


class FakeTable:
    """A table of row times; deletes the oldest rows first, ``limit`` per batch."""

    def __init__(self, table: str, retention_s: float, times: list[float]) -> None:
        self.table = table
        self.column = "at"
        self.retention_s = retention_s
        self.times = sorted(times)
        self.cutoffs: list[float] = []
        self.busy = False
        self.fail = False

    async def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]:
        self.cutoffs.append(cutoff)
        while True:
            if self.busy:
                yield Batch(0, busy=True)
                return
            if self.fail:
                raise ConnectionError("database went away")
            old = [t for t in self.times if t < cutoff][:limit]
            for t in old:
                self.times.remove(t)
            yield Batch(len(old), more=len(old) == limit)
            if len(old) < limit:
                return


def purged(registry: CollectorRegistry, table: str) -> float:
    value = registry.get_sample_value("opsmesh_retention_purged_rows_total", {"table": table})
    return value or 0.0


def make(
    *tables: FakeTable, batch_rows: int = 10, max_batches: int = 100
) -> tuple[Purger, CollectorRegistry, FakeClock]:
    registry, clock = CollectorRegistry(), FakeClock(T0)
    purger = Purger(
        tables,
        clock=clock,
        metrics=RetentionMetrics(registry),
        interval_s=600,
        batch_rows=batch_rows,
        max_batches=max_batches,
    )
    return purger, registry, clock


async def test_rows_older_than_the_retention_go_in_bounded_batches() -> None:
    table = FakeTable(
        "t.log", days(30), [T0 - days(40) + i for i in range(25)] + [T0 - days(29), T0]
    )
    purger, registry, _ = make(table)

    (report,) = await purger.run_once()

    assert table.cutoffs == [T0 - days(30)], "the cutoff comes from the injected clock"
    assert (report.rows, report.batches, report.stopped) == (25, 3, PurgeStop.DONE)
    assert table.times == [T0 - days(29), T0], "young rows stay"
    assert purged(registry, "t.log") == 25
    assert registry.get_sample_value(
        "opsmesh_retention_last_purge_timestamp_seconds", {"table": "t.log"}
    ) == pytest.approx(T0)


async def test_a_backlog_is_spread_over_runs_and_the_next_run_follows_at_once() -> None:
    table = FakeTable("t.big", days(1), [T0 - days(2) + i for i in range(45)])
    other = FakeTable("t.small", days(1), [T0 - days(2)])
    purger, registry, _ = make(table, other, max_batches=2)

    first = await purger.run_once()

    assert [(r.table, r.rows, r.stopped) for r in first] == [
        ("t.big", 20, PurgeStop.BATCH_LIMIT),
        ("t.small", 1, PurgeStop.DONE),
    ], "a table's backlog does not hold the next table back"
    assert len(table.times) == 25
    second = await purger.run_once()
    third = await purger.run_once()
    assert [(r.rows, r.stopped) for r in second + third] == [
        (20, PurgeStop.BATCH_LIMIT),
        (0, PurgeStop.DONE),
        (5, PurgeStop.DONE),
        (0, PurgeStop.DONE),
    ]
    assert not table.times
    assert purged(registry, "t.big") == 45


async def test_a_failing_table_is_counted_and_the_others_still_purge() -> None:
    broken = FakeTable("t.broken", days(1), [T0 - days(2)])
    broken.fail = True
    fine = FakeTable("t.fine", days(1), [T0 - days(2)])
    purger, registry, _ = make(broken, fine)

    reports = await purger.run_once()

    assert [r.stopped for r in reports] == [PurgeStop.FAILED, PurgeStop.DONE]
    assert not fine.times
    assert (
        registry.get_sample_value("opsmesh_retention_purge_failures_total", {"table": "t.broken"})
        == 1
    )
    assert (
        registry.get_sample_value(
            "opsmesh_retention_last_purge_timestamp_seconds", {"table": "t.broken"}
        )
        is None
    )


async def test_a_table_another_replica_holds_is_left_to_it() -> None:
    table = FakeTable("t.shared", days(1), [T0 - days(2)])
    table.busy = True
    purger, _, _ = make(table)

    (report,) = await purger.run_once()

    assert (report.stopped, report.rows) == (PurgeStop.BUSY, 0)
    assert table.times == [T0 - days(2)]


async def test_the_cutoff_moves_with_the_clock() -> None:
    table = FakeTable("t.log", days(30), [T0 - days(10)])
    purger, _, clock = make(table)

    await purger.run_once()
    assert table.times, "ten days old: kept"
    clock.advance(days(21))
    await purger.run_once()
    assert not table.times, "31 days old: purged"


async def test_a_stop_ends_the_run_between_batches() -> None:
    stop = asyncio.Event()

    class StopsAfterOneBatch(FakeTable):
        async def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]:
            async for batch in super().batches(cutoff, limit):
                stop.set()
                yield batch

    table = StopsAfterOneBatch("t.log", days(1), [T0 - days(2) + i for i in range(30)])
    later = FakeTable("t.later", days(1), [T0 - days(2)])
    purger, _, _ = make(table, later)

    reports = await purger.run_once(stop)

    assert [(r.table, r.rows, r.stopped) for r in reports] == [("t.log", 10, PurgeStop.STOPPED)]
    assert later.times, "no table is started once stopping"


async def test_the_worker_runs_until_stopped_and_survives_failures() -> None:
    stop = asyncio.Event()
    runs: list[float] = []

    class Counting(FakeTable):
        async def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]:
            runs.append(cutoff)
            if len(runs) == 3:
                stop.set()
            if len(runs) == 1:
                raise ConnectionError("first run fails")
            yield Batch(0, more=True)  # never ends by itself: the batch limit ends each run

    registry, clock = CollectorRegistry(), FakeClock(T0)
    purger = Purger(
        [Counting("t.log", days(1), [])],
        clock=clock,
        metrics=RetentionMetrics(registry),
        interval_s=0.001,
        max_batches=1,
    )

    await asyncio.wait_for(purger.run(stop), timeout=10)

    assert len(runs) == 3, "a failed run is retried at the next interval"


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Purger(
            [],
            clock=FakeClock(T0),
            metrics=RetentionMetrics(CollectorRegistry()),
            interval_s=1,
            batch_rows=0,
        )
