"""Alertmanager's webhook payload (version "4"), so existing receivers work unchanged.

Field by field as Alertmanager writes it (``notify/webhook/webhook.go`` ``Message``,
``template/template.go`` ``Template.Data``, ``alert/alert.go`` ``Alerts``): the receiver
name passed through Go's ``regexp.QuoteMeta``; a firing alert's ``endsAt`` is Go's zero
time (Alertmanager does not expose an end that has not been reached); the reason as
``notification_reason`` in Alertmanager's words; ``routeLabels`` (opsmesh routes carry
none, so ``{}``). Alerts come in the order the alert-engine lists them, which is
Alertmanager's (``job``, ``instance``, then the label sets).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from notifier.core.subset import carrying
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested, NotifyReason

_ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends for an unset endsAt
# RFC 3339 has four-digit years: a later instant (an endsAt in year 10000) is shown as
# the last one it can express, as Go clamps nothing but cannot write it either.
_LAST_TIME = "9999-12-31T23:59:59.999999Z"
_LAST_EPOCH = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC).timestamp()


def rfc3339(epoch: float | None) -> str:
    """An epoch as Go's ``time.RFC3339Nano`` writes it in UTC (Alertmanager's JSON times);
    never raises (times past year 9999 are clamped). Epochs are floats, so the fraction
    has at most microseconds where Go keeps nanoseconds."""
    if epoch is None:
        return _ZERO_TIME
    if not math.isfinite(epoch) or epoch >= _LAST_EPOCH:
        return _LAST_TIME if epoch > 0 else _ZERO_TIME
    if epoch < 0:
        return _ZERO_TIME
    moment = datetime.fromtimestamp(epoch, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        # Go's RFC3339Nano: the fraction without its trailing zeros (".5", not ".500000").
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


# Alertmanager's NotifyReason.String() (notify/notify.go).
AM_REASONS = {
    NotifyReason.FIRST_NOTIFICATION: "first notification",
    NotifyReason.NEW_ALERTS: "new alerts added",
    NotifyReason.SOME_RESOLVED: "some alerts resolved",
    NotifyReason.ALL_RESOLVED: "all alerts resolved",
    NotifyReason.REPEAT_INTERVAL_ELAPSED: "repeat interval elapsed",
}
_GO_REGEXP_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def go_quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: a backslash before each of ``\\.+*?()|[]{}^$`` only
    (Python's ``re.escape`` also escapes ``-``, ``#``, spaces ...)."""
    return "".join("\\" + c if c in _GO_REGEXP_SPECIAL else c for c in text)


def webhook_payload(request: NotificationRequested, max_alerts: int = 0) -> dict[str, Any]:
    """``max_alerts`` (the integration's; 0: all): as Alertmanager's webhook, only the first
    ``max_alerts`` alerts are sent, the rest counted in ``truncatedAlerts``, and the
    status and common labels and annotations are those of the alerts sent (Alertmanager
    truncates before it builds the template data)."""
    if 0 < max_alerts < len(request.alerts):
        request = carrying(
            request, request.alerts[:max_alerts], truncated=len(request.alerts) - max_alerts
        )
    return {
        "receiver": go_quote_meta(request.receiver),
        "status": request.status.value,
        "alerts": [
            {
                "status": alert.status.value,
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(alert.ends_at if alert.status is AlertStatus.RESOLVED else None),
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }
            for alert in request.alerts
        ],
        "notification_reason": AM_REASONS.get(request.reason, "unknown"),
        "groupLabels": dict(request.group_labels),
        "commonLabels": dict(request.common_labels),
        "commonAnnotations": dict(request.common_annotations),
        "routeLabels": {},
        "externalURL": request.external_url,
        "version": "4",
        "groupKey": request.group_key,
        "truncatedAlerts": request.truncated_alerts,
        # opsmesh additions; Alertmanager receivers ignore unknown fields.
        "notificationReason": request.reason.value,
        "idempotencyKey": request.idempotency_key,
    }
