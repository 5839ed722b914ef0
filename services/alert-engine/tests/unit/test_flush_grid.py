"""Flush timers stay on Alertmanager's grid: each flush is due one group_interval after
the previous one was *due*, however late the flusher's ticks run, so a day of uptime
accumulates no lateness. Simulated time: a day of ticks whose lateness varies."""

from __future__ import annotations

import itertools
import random

from alert_engine.core.grouping import grid_instant, next_on_grid
from opsmesh.events.notifications import NotifyReason

from .test_engine import NOON, World

DAY = 86_400.0
GROUP_WAIT, GROUP_INTERVAL, REPEAT = 30.0, 300.0, 3_600.0  # the default route of CONFIG


def test_a_day_of_late_ticks_flushes_on_the_grid_and_repeats_on_time() -> None:
    rng = random.Random(20261205)
    w = World()
    # A firing alert that stays firing all day (re-posted as a client would).
    w.post(alertname="Disk", host="a", ends=NOON + 2 * DAY)
    first_due = NOON + GROUP_WAIT
    flushes: list[float] = []
    after_stall: set[int] = set()  # indexes of flushes that came right after a stall
    notified: list[tuple[float, NotifyReason]] = []
    stalls = {NOON + 6 * 3600: 400.0, NOON + 12 * 3600: 650.0, NOON + 18 * 3600: 90.0}
    stalled = False
    while w.now < NOON + DAY:
        # The flusher's tick: nominally 0.1 s, often late (a busy event loop) ...
        step = 0.1 + rng.choice([0.0, 0.0, 0.05, 0.3, 2.5])
        # ... and three stalls, two of them longer than a group_interval.
        for at, length in list(stalls.items()):
            if w.now >= at:
                step += length
                del stalls[at]
                stalled = True
        w.now += step
        for plan in w.flush():
            if stalled:
                after_stall.add(len(flushes))
                stalled = False
            flushes.append(w.now)
            if plan.reason is not None:
                notified.append((w.now, plan.reason))

    # Every flush served a grid instant first_due + k * group_interval ...
    served = [grid_instant(first_due, GROUP_INTERVAL, at) for at in flushes]
    assert all((s - first_due) % GROUP_INTERVAL == 0 for s in served)
    assert len(set(served)) == len(served), "each instant served once"
    # ... within one tick of it unless a stall skipped it, and the lateness never grows.
    lateness = [at - s for at, s in zip(flushes, served, strict=True)]
    assert len(after_stall) == 3
    assert max(x for i, x in enumerate(lateness) if i not in after_stall) < 3.0
    assert lateness[-1] < 3.0, "no drift after a day"
    skipped = round((flushes[-1] - first_due) / GROUP_INTERVAL) + 1 - len(flushes)
    assert skipped > 0, "the stalls skipped instants instead of bursting to catch up"
    assert all(
        b - a >= GROUP_INTERVAL - 3.0
        for i, (a, b) in enumerate(itertools.pairwise(flushes))
        if i not in after_stall and i + 1 not in after_stall
    ), "flushes an interval apart"
    # After a stall: one flush for the instant it served, then back on the grid — never a
    # burst replaying the instants it slept through.
    for i in after_stall:
        assert served[i + 1] - served[i] == GROUP_INTERVAL

    # Repeats land on the first grid instant a repeat_interval after the last
    # notification's instant: exactly every hour here (REPEAT is a multiple of the grid).
    reasons = [reason for _, reason in notified]
    assert reasons[0] is NotifyReason.FIRST_NOTIFICATION
    assert set(reasons[1:]) == {NotifyReason.REPEAT_INTERVAL_ELAPSED}
    instants = [grid_instant(first_due, GROUP_INTERVAL, at) for at, _ in notified]
    gaps = {b - a for a, b in itertools.pairwise(instants)}
    assert gaps <= {REPEAT, REPEAT + GROUP_INTERVAL}, gaps  # + one instant only after a stall
    assert len(notified) >= 23


def test_next_on_grid() -> None:
    assert next_on_grid(100.0, 300.0, 100.0) == 400.0
    assert next_on_grid(100.0, 300.0, 399.9) == 400.0  # ran late: still due + interval
    assert next_on_grid(100.0, 300.0, 400.0) == 700.0  # a whole interval late: skip ahead
    assert next_on_grid(100.0, 300.0, 1_000.0) == 1_300.0
    assert grid_instant(100.0, 300.0, 1_000.0) == 1_000.0
    assert grid_instant(100.0, 300.0, 1_050.0) == 1_000.0
    assert grid_instant(100.0, 300.0, 350.0) == 100.0
