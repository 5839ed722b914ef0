"""The fault suite's accounting: what counts as lost, resent and renotified."""

from __future__ import annotations

from tests.faults.accounting import DuplicateKind, Received, received_for, tally


def _r(fault_id: str, status: str, webhook_id: str = "k1", reason: str = "r") -> Received:
    return Received(fault_id, status, webhook_id, reason)


def test_one_firing_and_one_resolved_per_group_is_clean() -> None:
    result = tally(["a", "b"], [_r("a", "firing"), _r("b", "firing"), _r("a", "resolved", "k2")])
    assert result.expected == 4
    assert result.lost == (("b", "resolved"),)
    assert result.duplicates == ()


def test_the_same_webhook_id_twice_is_a_resend_another_id_a_renotification() -> None:
    result = tally(
        ["a"],
        [
            _r("a", "firing", "k1"),
            _r("a", "firing", "k1"),
            _r("a", "firing", "k9", "new_alerts"),
            _r("a", "resolved", "k2"),
        ],
    )
    assert result.lost == ()
    assert [(d.kind, d.webhook_id) for d in result.duplicates] == [
        (DuplicateKind.RESENT, "k1"),
        (DuplicateKind.RENOTIFIED, "k9"),
    ]
    assert result.count(DuplicateKind.RESENT) == 1
    assert result.count(DuplicateKind.RENOTIFIED) == 1
    assert "reason=new_alerts" in result.duplicates[1].describe()


def test_groups_outside_the_load_are_set_apart() -> None:
    result = tally(["a"], [_r("a", "firing"), _r("a", "resolved"), _r("z", "firing")])
    assert result.lost == ()
    assert [u.fault_id for u in result.unexpected] == ["z"]


def test_sink_entries_are_read_by_their_fault_id_label() -> None:
    entries = [
        {
            "webhook_id": "k1",
            "payload": {
                "status": "firing",
                "notificationReason": "first_notification",
                "commonLabels": {"fault_id": "case1.api.0"},
            },
        },
        {"webhook_id": "k2", "payload": {"status": "firing", "commonLabels": {}}},
        {"webhook_id": "k3", "payload": {"status": "firing", "commonLabels": {"fault_id": "x"}}},
    ]
    assert received_for(entries, "case1.") == [
        Received("case1.api.0", "firing", "k1", "first_notification")
    ]
