"""The flusher's sleep: until the earliest group is due, so a group flushes as its
``group_wait`` elapses rather than on the tick after it; never longer than a tick (sync
and maintenance run on it); backoff after failures."""

from __future__ import annotations

from alert_engine.pipeline.flusher import MIN_WAIT_S, next_wait

TICK = 0.1


def test_sleeps_until_the_earliest_group_is_due_within_a_tick() -> None:
    assert next_wait(TICK, 0, 0.03) == 0.03
    assert next_wait(TICK, 0, 25.0) == TICK
    assert next_wait(TICK, 0, None) == TICK


def test_a_group_due_now_still_yields_to_the_event_loop() -> None:
    assert next_wait(TICK, 0, 0.0) == MIN_WAIT_S


def test_failures_back_off_whatever_is_due() -> None:
    assert next_wait(TICK, 1, 0.0) == 2 * TICK
    assert next_wait(TICK, 3, 0.01) == 8 * TICK
    assert next_wait(TICK, 20, None) == 10.0
