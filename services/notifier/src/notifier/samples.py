"""A sample alert group: what ``opsmesh notify preview`` renders and ``notify test`` sends."""

from __future__ import annotations

import time
import uuid

from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested, NotifyReason


def sample_request(
    receiver: str,
    *,
    status: AlertStatus = AlertStatus.FIRING,
    key: str | None = None,
    now: float | None = None,
    summary: str = "Disk <sda1> is 97% full & climbing",
) -> NotificationRequested:
    at = time.time() if now is None else now
    labels = {"alertname": "DiskAlmostFull", "service": "checkout", "severity": "page"}
    return NotificationRequested(
        idempotency_key=key or f"sample-{uuid.uuid4().hex}",
        receiver=receiver,
        group_key='{}:{alertname="DiskAlmostFull", service="checkout"}',
        status=status,
        reason=(
            NotifyReason.FIRST_NOTIFICATION
            if status is AlertStatus.FIRING
            else NotifyReason.ALL_RESOLVED
        ),
        group_labels={"alertname": "DiskAlmostFull", "service": "checkout"},
        common_labels=labels,
        common_annotations={
            "summary": summary,
            "runbook_url": "https://runbooks.example.com/disk-almost-full",
        },
        alerts=[
            Alert(
                fingerprint="5f3c2a9d0b1e4f67",
                status=status,
                labels={**labels, "instance": "db-1:9100"},
                annotations={
                    "summary": summary,
                    "description": "Free space has been below 5% for 10 minutes.",
                    "runbook_url": "https://runbooks.example.com/disk-almost-full",
                },
                starts_at=at - 600,
                ends_at=at if status is AlertStatus.RESOLVED else None,
                generator_url="https://opsmesh.example.com/alerts/5f3c2a9d0b1e4f67",
            )
        ],
        external_url="https://opsmesh.example.com/groups/checkout",
        requested_at=at,
    )
