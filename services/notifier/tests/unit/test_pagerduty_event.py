"""PagerDuty Events API v2 bodies: dedup keys, severity mapping, links, trigger/resolve."""

from __future__ import annotations

import pytest

from notifier.core import pagerduty_event
from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested, NotifyReason


def request(
    status: AlertStatus = AlertStatus.FIRING, severity: str = "page"
) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key="k1",
        receiver="ops",
        group_key='{}:{alertname="DiskFull"}',
        status=status,
        reason=NotifyReason.FIRST_NOTIFICATION,
        group_labels={"alertname": "DiskFull"},
        common_labels={"alertname": "DiskFull", "severity": severity},
        common_annotations={"runbook_url": "https://runbooks.example/disk"},
        alerts=[
            Alert(
                fingerprint="f1",
                status=status,
                labels={"alertname": "DiskFull", "severity": severity},
                starts_at=1_700_000_000.0,
                generator_url="https://opsmesh.example/alerts/f1",
            )
        ],
        external_url="https://opsmesh.example/groups/1",
        requested_at=1_700_000_100.0,
    )


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("critical", "critical"),
        ("page", "critical"),
        ("ERROR", "error"),
        ("warn", "warning"),
        ("info", "info"),
        ("low", "info"),
        ("", "error"),
        ("bogus", "error"),
    ],
)
def test_severity_from_labels(label: str, expected: str) -> None:
    assert pagerduty_event.severity({"severity": label}) == expected


def test_trigger_carries_dedup_key_severity_and_links() -> None:
    body = pagerduty_event.event(request(), routing_key="R", summary="disk", source="opsmesh")
    assert body["event_action"] == "trigger"
    assert body["routing_key"] == "R"
    assert body["payload"]["severity"] == "critical"
    assert body["payload"]["summary"] == "disk"
    hrefs = [link["href"] for link in body["links"]]
    assert hrefs == [
        "https://runbooks.example/disk",
        "https://opsmesh.example/alerts/f1",
        "https://opsmesh.example/groups/1",
    ]
    assert len(body["dedup_key"]) <= 255


def test_resolve_uses_the_triggers_dedup_key() -> None:
    trigger = pagerduty_event.event(request(), routing_key="R", summary="s", source="o")
    resolve = pagerduty_event.event(
        request(AlertStatus.RESOLVED), routing_key="R", summary="s", source="o"
    )
    assert resolve == {
        "routing_key": "R",
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_dedup_key_differs_per_group_and_receiver() -> None:
    a = pagerduty_event.dedup_key("ops", "g1")
    assert a == pagerduty_event.dedup_key("ops", "g1")
    assert a != pagerduty_event.dedup_key("ops", "g2")
    assert a != pagerduty_event.dedup_key("dev", "g1")
