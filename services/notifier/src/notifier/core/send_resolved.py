"""What one integration is sent of a notification, by its ``send_resolved`` (as
Alertmanager's RetryStage and per-integration DedupStage do, ``notify/notify.go``).

An integration with ``send_resolved: false`` gets the firing alerts only, with the
group's status and common labels and annotations computed over them (Alertmanager builds
its template data from the alerts it sends); it gets nothing when none is firing, nor
when the notification exists only because alerts resolved (its dedup stage would not
have notified).
"""

from __future__ import annotations

from notifier.core.subset import carrying
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested, NotifyReason


def for_integration(
    request: NotificationRequested, send_resolved: bool
) -> NotificationRequested | None:
    """The request as this integration is sent it, or None: nothing to send."""
    if send_resolved:
        return request
    if request.reason is NotifyReason.SOME_RESOLVED:
        return None
    firing = [a for a in request.alerts if a.status is AlertStatus.FIRING]
    if not firing:
        return None
    if len(firing) == len(request.alerts):
        return request
    return carrying(request, firing)
