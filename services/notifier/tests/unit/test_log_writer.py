"""LogWriter's retry of a failed delivery-log INSERT: it keeps trying while the service
runs, and a stop ends it (one last attempt) instead of holding the shutdown forever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from notifier.delivery.log import DeliveryLogUnavailable, LogWriter, Outcome


class FlakyLog:
    """A delivery log whose INSERT fails ``failures`` times (None: always)."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.attempts = 0
        self.rows: list[Outcome] = []
        self.failed = asyncio.Event()

    async def record_many(self, outcomes: list[Outcome]) -> None:
        self.attempts += 1
        if self.failures is None or self.failures > 0:
            if self.failures is not None:
                self.failures -= 1
            self.failed.set()
            raise OSError("connection refused (simulated)")
        self.rows.extend(outcomes)


def outcome(key: str) -> Outcome:
    return Outcome(key, "hook", "team", "webhook", "delivered", 1, 200, None)


def writer_over(log: FlakyLog, published: list[Any]) -> LogWriter:
    async def publish(results: list[Any]) -> None:
        published.extend(results)

    return LogWriter(log, publish)  # type: ignore[arg-type]


async def test_a_failing_insert_is_retried_until_it_succeeds() -> None:
    log, published = FlakyLog(failures=2), []
    writer = writer_over(log, published)
    stop, give_up = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(writer.run(stop, give_up=give_up))
    row, result = writer.record(outcome("a"), "result-a")
    await asyncio.wait_for(row, timeout=5)
    await asyncio.wait_for(result, timeout=5)
    assert log.attempts == 3
    assert [o.key for o in log.rows] == ["a"]
    assert published == ["result-a"]
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def test_a_stop_ends_the_retries_and_fails_the_rows_not_written() -> None:
    log, published = FlakyLog(failures=None), []
    writer = writer_over(log, published)
    stop, give_up = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(writer.run(stop, give_up=give_up))
    row, result = writer.record(outcome("a"), "result-a")
    # the first INSERT has failed: the writer is in its backoff
    await asyncio.wait_for(log.failed.wait(), timeout=5)
    give_up.set()
    with pytest.raises(DeliveryLogUnavailable, match="OSError"):
        await asyncio.wait_for(row, timeout=5)
    assert result.cancelled(), "a result whose row is not written is never published"
    await asyncio.wait_for(task, timeout=5)
    assert log.attempts == 2, "one last attempt after the stop"
    assert published == []
    # What is recorded after the writer gave up fails at once rather than wait forever.
    late, _ = writer.record(outcome("b"), "result-b")
    with pytest.raises(DeliveryLogUnavailable):
        await asyncio.wait_for(late, timeout=5)


async def test_a_stop_with_the_log_healthy_writes_what_is_pending() -> None:
    log, published = FlakyLog(failures=0), []
    writer = writer_over(log, published)
    stop = asyncio.Event()
    rows = [writer.record(outcome(k), f"result-{k}")[0] for k in "abc"]
    stop.set()
    await asyncio.wait_for(writer.run(stop, give_up=stop), timeout=5)
    await asyncio.gather(*rows)
    assert [o.key for o in log.rows] == ["a", "b", "c"]
    assert published == ["result-a", "result-b", "result-c"]
