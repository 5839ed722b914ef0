"""needs_update: every reason it can name and every case where it stays silent."""

from __future__ import annotations

from collections.abc import Set

import pytest

from alert_engine.core.decision import LogEntry, needs_update
from opsmesh.events.notifications import NotifyReason

NOW = 1_700_000_000.0
REPEAT = 4 * 3600.0


def entry(
    firing: Set[str] = frozenset(), resolved: Set[str] = frozenset(), *, age: float = 60
) -> LogEntry:
    return LogEntry(frozenset(firing), frozenset(resolved), notified_at=NOW - age, sequence=3)


def decide(
    last: LogEntry | None,
    firing: Set[str] = frozenset(),
    resolved: Set[str] = frozenset(),
    *,
    send_resolved: bool = True,
) -> NotifyReason | None:
    return needs_update(
        last, firing, resolved, repeat_interval_s=REPEAT, now=NOW, send_resolved=send_resolved
    )


# -- reasons -------------------------------------------------------------------------


def test_first_notification_without_entry() -> None:
    assert decide(None, {"a"}) is NotifyReason.FIRST_NOTIFICATION
    assert decide(None, {"a"}, {"b"}) is NotifyReason.FIRST_NOTIFICATION


def test_first_notification_when_entry_had_no_firing() -> None:
    # The last notification told the receiver only of resolved alerts.
    assert decide(entry(set(), {"x"}), {"a"}) is NotifyReason.FIRST_NOTIFICATION


def test_new_alerts() -> None:
    assert decide(entry({"a"}), {"a", "b"}) is NotifyReason.NEW_ALERTS


def test_new_alerts_when_one_is_replaced_by_another() -> None:
    assert decide(entry({"a"}), {"b"}, {"a"}) is NotifyReason.NEW_ALERTS


def test_new_alerts_wins_over_repeat_interval() -> None:
    assert decide(entry({"a"}, age=REPEAT * 2), {"a", "b"}) is NotifyReason.NEW_ALERTS


@pytest.mark.parametrize("send_resolved", [True, False])
def test_all_resolved_regardless_of_send_resolved(send_resolved: bool) -> None:
    # Sent even with send_resolved=False, so the log forgets the firing set.
    assert decide(entry({"a", "b"}), set(), {"a", "b"}, send_resolved=send_resolved) is (
        NotifyReason.ALL_RESOLVED
    )


def test_all_resolved_when_alerts_left_the_group_unseen() -> None:
    assert decide(entry({"a"}), set(), set()) is NotifyReason.ALL_RESOLVED


def test_some_resolved() -> None:
    assert decide(entry({"a", "b"}), {"a"}, {"b"}) is NotifyReason.SOME_RESOLVED


def test_some_resolved_when_a_new_one_resolves() -> None:
    assert decide(entry({"a", "b"}, {"c"}), {"a"}, {"b", "c"}) is NotifyReason.SOME_RESOLVED


def test_repeat_interval_elapsed() -> None:
    assert decide(entry({"a"}, age=REPEAT + 1), {"a"}) is NotifyReason.REPEAT_INTERVAL_ELAPSED


def test_repeat_interval_elapsed_exactly_at_the_interval() -> None:
    assert decide(entry({"a"}, age=REPEAT), {"a"}) is NotifyReason.REPEAT_INTERVAL_ELAPSED


def test_repeat_interval_with_fewer_firing_and_send_resolved_off() -> None:
    last = entry({"a", "b"}, age=REPEAT)
    assert decide(last, {"a"}, {"b"}, send_resolved=False) is (NotifyReason.REPEAT_INTERVAL_ELAPSED)


# -- nothing to send -----------------------------------------------------------------


def test_no_entry_and_only_resolved() -> None:
    assert decide(None, set(), {"a"}) is None


def test_no_entry_and_nothing() -> None:
    assert decide(None) is None


def test_nothing_changed_within_repeat_interval() -> None:
    assert decide(entry({"a"}, age=REPEAT - 1), {"a"}) is None


def test_fewer_firing_and_already_told_resolved_within_repeat_interval() -> None:
    assert decide(entry({"a", "b"}, {"b"}), {"a"}, {"b"}) is None


def test_firing_empty_and_entry_firing_empty() -> None:
    # Alerts fired and resolved between two flushes: the receiver never heard of them.
    assert decide(entry(set(), {"x"}), set(), {"y"}) is None
    assert decide(entry(set(), set(), age=REPEAT * 2), set(), set()) is None


def test_send_resolved_false_suppresses_some_resolved() -> None:
    assert decide(entry({"a", "b"}), {"a"}, {"b"}, send_resolved=False) is None
