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


def am_event(
    request: NotificationRequested, *, routing_key: str, rendered: dict[str, Any]
) -> dict[str, Any]:
    """Alertmanager's Events API v2 message from fields its templates rendered
    (``notifier.amtemplate.messages.pagerduty_fields``): the same shape for a trigger and a
    resolve, empty optional fields left out as Alertmanager's JSON tags leave them out.
    ``dedup_key`` stays opsmesh's (receiver and group), so both ends address one alert."""
    from notifier.amtemplate.messages import (  # noqa: PLC0415 - core stays import-light
        PAGERDUTY_SUMMARY_MAX_RUNES,
        prefixed,
        truncate_in_runes,
    )

    action = "resolve" if request.status is AlertStatus.RESOLVED else "trigger"
    payload: dict[str, Any] = {
        "summary": truncate_in_runes(str(rendered["description"]), PAGERDUTY_SUMMARY_MAX_RUNES),
        "source": rendered["source"],
        "severity": rendered["severity"],
    }
    for name in ("class", "component", "group"):
        if rendered[name]:
            payload[name] = rendered[name]
    details = prefixed(rendered, "details.")
    if details:
        payload["custom_details"] = details
    links = prefixed(rendered, "links.")
    images = prefixed(rendered, "images.")
    message: dict[str, Any] = {
        "routing_key": routing_key,
        "dedup_key": dedup_key(request.receiver, request.group_key),
        "event_action": action,
        "payload": payload,
    }
    for name in ("client", "client_url"):
        if rendered[name]:
            message[name] = rendered[name]
    count = len({k.split(".")[0] for k in images})
    found_images = [{n: images[f"{i}.{n}"] for n in ("src", "alt", "href")} for i in range(count)]
    if any(image["src"] for image in found_images):
        message["images"] = [image for image in found_images if image["src"]]
    count = len({k.split(".")[0] for k in links})
    found_links = [{"href": links[f"{i}.href"], "text": links[f"{i}.text"]} for i in range(count)]
    if any(link["href"] for link in found_links):
        message["links"] = [link for link in found_links if link["href"]]
    return message
