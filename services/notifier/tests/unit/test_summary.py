"""The daily summary from alert state transitions."""

from __future__ import annotations

from notifier.core.summary import RuleCount, Transition, next_run, summarise


def test_counts_opened_resolved_noisiest_and_time_to_resolve() -> None:
    transitions = [
        Transition("a", "Disk", "pending", "firing", 100.0),
        Transition("b", "Disk", "pending", "firing", 110.0),
        Transition("c", "CPU", "pending", "firing", 120.0),
        Transition("a", "Disk", "firing", "resolved", 160.0),
        Transition("y", "Old", "firing", "resolved", 200.0),  # opened yesterday
        Transition("c", "CPU", "firing", "resolved", 420.0),
    ]
    summary = summarise(transitions, start=0.0, end=86_400.0, firing_before=[("y", -100.0)])
    assert summary.opened == 3
    assert summary.resolved == 3
    assert summary.still_firing == 1  # b
    assert summary.noisiest == (RuleCount("Disk", 2), RuleCount("CPU", 1))
    assert summary.median_resolve_s == 300.0  # 60, 300, 300
    assert summary.max_resolve_s == 300.0


def test_an_empty_day() -> None:
    summary = summarise([], start=0.0, end=1.0)
    assert (summary.opened, summary.resolved, summary.median_resolve_s) == (0, 0, None)


def test_next_run_is_the_next_hour_strictly_after_now() -> None:
    day = 86_400.0
    assert next_run(0.0, 8) == 8 * 3600
    assert next_run(8 * 3600, 8) == day + 8 * 3600
    assert next_run(9 * 3600, 8) == day + 8 * 3600
