"""Bounded stops: a step that hangs is abandoned, and the deadline ends a stuck process."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from opsmesh.shutdown import finish_within


async def test_a_step_that_finishes_in_time_is_awaited() -> None:
    done = []

    async def step() -> None:
        await asyncio.sleep(0)
        done.append(True)

    assert await finish_within(step(), 5.0, "quick")
    assert done == [True]


async def test_a_step_that_never_finishes_is_cancelled_and_left() -> None:
    never = asyncio.Event()
    cancelled = []

    async def step() -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    assert not await finish_within(step(), 0.01, "hangs")
    assert cancelled == [True]


async def test_a_step_that_refuses_cancellation_is_left_behind_after_the_grace() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallows every cancellation, as a cleanup in a finally may

    task_count = len(asyncio.all_tasks())
    assert not await finish_within(stubborn(), 0.01, "stubborn")
    assert len(asyncio.all_tasks()) == task_count + 1, "still running, no longer waited on"
    release.set()
    await asyncio.sleep(0)


async def test_a_failing_step_does_not_stop_the_shutdown() -> None:
    async def fails() -> None:
        raise ConnectionResetError("broker gone")

    assert not await finish_within(fails(), 1.0, "fails")


def test_the_deadline_ends_a_process_whose_shutdown_hangs() -> None:
    code = (
        "import time\n"
        "from opsmesh.shutdown import ShutdownDeadline\n"
        "ShutdownDeadline(0.2, 75).start()\n"
        "time.sleep(60)\n"  # a shutdown that never ends
    )
    result = subprocess.run([sys.executable, "-c", code], timeout=30, check=False)
    assert result.returncode == 75
