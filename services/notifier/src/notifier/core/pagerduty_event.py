"""PagerDuty Events API v2 events for a notification group.

``dedup_key`` comes from the receiver and the alert group, so the trigger and the later
resolve address the same PagerDuty alert, and a resent trigger (a crash between send and
record) is merged by PagerDuty instead of paging twice.
"""

from __future__ import annotations

import hashlib
from typing import Any

from notifier.core.webhook_payload import rfc3339
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested

SEVERITIES = ("critical", "error", "warning", "info")
# Common label values onto PagerDuty's four severities.
_SEVERITY_ALIASES = {
    "page": "critical",
    "fatal": "critical",
    "emergency": "critical",
    "high": "error",
    "major": "error",
    "warn": "warning",
    "minor": "warning",
    "medium": "warning",
    "low": "info",
    "none": "info",
    "notice": "info",
}
_SUMMARY_MAX = 1024
_RUNBOOK_ANNOTATIONS = ("runbook_url", "runbook")


def dedup_key(receiver: str, group_key: str) -> str:
    # Group keys may be 4 KiB; PagerDuty allows 255 characters.
    return hashlib.sha256(f"{receiver}\x00{group_key}".encode()).hexdigest()


def severity(labels: dict[str, str], default: str = "error") -> str:
    value = labels.get("severity", "").strip().lower()
    if value in SEVERITIES:
        return value
    return _SEVERITY_ALIASES.get(value, default)


def links(request: NotificationRequested) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(href: str, text: str) -> None:
        if href and href not in seen and href.startswith(("http://", "https://")):
            seen.add(href)
            out.append({"href": href, "text": text})

    for name in _RUNBOOK_ANNOTATIONS:
        add(request.common_annotations.get(name, ""), "Runbook")
    for alert in request.alerts:
        for name in _RUNBOOK_ANNOTATIONS:
            add(alert.annotations.get(name, ""), "Runbook")
        add(alert.generator_url, f"Alert {alert.labels.get('alertname', alert.fingerprint)}")
    add(request.external_url, "Alert group")
    return out[:20]


def event(
    request: NotificationRequested,
    *,
    routing_key: str,
    summary: str,
    source: str,
    default_severity: str = "error",
) -> dict[str, Any]:
    key = dedup_key(request.receiver, request.group_key)
    if request.status is AlertStatus.RESOLVED:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    firing = [a for a in request.alerts if a.status is AlertStatus.FIRING] or request.alerts
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": summary[:_SUMMARY_MAX] or "opsmesh alert",
            "source": source,
            "severity": severity(dict(request.common_labels), default_severity),
            "timestamp": rfc3339(min((a.starts_at for a in firing), default=request.requested_at)),
            "group": request.group_labels.get("alertname", ""),
            "class": request.common_labels.get("alertname", ""),
            "custom_details": {
                "firing": len([a for a in request.alerts if a.status is AlertStatus.FIRING]),
                "resolved": len([a for a in request.alerts if a.status is AlertStatus.RESOLVED]),
                "group_labels": dict(request.group_labels),
                "common_labels": dict(request.common_labels),
                "common_annotations": dict(request.common_annotations),
            },
        },
        "links": links(request),
        "client": "opsmesh",
        "client_url": request.external_url,
    }
