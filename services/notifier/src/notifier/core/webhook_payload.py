"""Alertmanager's webhook payload (version "4"), so existing receivers work unchanged."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from opsmesh.events.notifications import NotificationRequested

_ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends for an unset endsAt
# RFC 3339 has four-digit years: a later instant (an endsAt in year 10000) is shown as
# the last one it can express, as Go clamps nothing but cannot write it either.
_LAST_TIME = "9999-12-31T23:59:59.999999Z"
_LAST_EPOCH = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC).timestamp()


def rfc3339(epoch: float | None) -> str:
    """An epoch as RFC 3339 in UTC; never raises (times past year 9999 are clamped)."""
    if epoch is None:
        return _ZERO_TIME
    if not math.isfinite(epoch) or epoch >= _LAST_EPOCH:
        return _LAST_TIME if epoch > 0 else _ZERO_TIME
    if epoch < 0:
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
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(alert.ends_at),
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }
            for alert in request.alerts
        ],
    }
