"""Alertmanager's webhook payload (version "4"), so existing receivers work unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opsmesh.events.notifications import NotificationRequested

_ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends for an unset endsAt


def _rfc3339(epoch: float | None) -> str:
    if epoch is None:
        return _ZERO_TIME
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def webhook_payload(request: NotificationRequested) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": request.group_key,
        "truncatedAlerts": request.truncated_alerts,
        "status": request.status.value,
        "receiver": request.receiver,
        "groupLabels": dict(request.group_labels),
        "commonLabels": dict(request.common_labels),
        "commonAnnotations": dict(request.common_annotations),
        "externalURL": request.external_url,
        # opsmesh additions; Alertmanager receivers ignore unknown fields.
        "notificationReason": request.reason.value,
        "idempotencyKey": request.idempotency_key,
        "alerts": [
            {
                "status": alert.status.value,
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "startsAt": _rfc3339(alert.starts_at),
                "endsAt": _rfc3339(alert.ends_at),
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }
            for alert in request.alerts
        ],
    }
