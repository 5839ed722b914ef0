"""FakeClock: the simulated time the pure cores are tested in."""

from __future__ import annotations

import asyncio

import pytest

from opsmesh.clock import sleep_until_stopped
from opsmesh_dev.testing.clock import FakeClock


def test_moves_only_when_told() -> None:
    clock = FakeClock(1000.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)
    clock.advance(2.5)
    assert (clock.now(), clock.monotonic()) == (1002.5, 2.5)
    clock.set(1010.0)
    assert (clock.now(), clock.monotonic()) == (1010.0, 10.0)


def test_never_goes_backwards() -> None:
    clock = FakeClock(1000.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(999.0)
    assert clock.now() == 1000.0


async def test_sleep_until_stopped_returns_at_once_when_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await sleep_until_stopped(stop, 60.0) is True


async def test_sleep_until_stopped_times_out() -> None:
    assert await sleep_until_stopped(asyncio.Event(), 0) is False
