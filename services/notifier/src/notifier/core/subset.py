"""A notification narrowed to some of its alerts, as Alertmanager would build it.

Alertmanager computes a notification's template data (``template.Data``: ``status``,
``commonLabels``, ``commonAnnotations``) from the alerts an integration is actually sent,
after its RetryStage dropped resolved alerts (``send_resolved: false``) and after the
webhook integration cut the list to ``max_alerts``; the group labels, receiver and reason
stay those of the group.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested
from opsmesh.labels import common_pairs


def carrying(
    request: NotificationRequested, alerts: Sequence[Alert], truncated: int = 0
) -> NotificationRequested:
    """``request`` with only ``alerts`` (a non-empty part of its own, in its order);
    ``truncated``: how many more were left out, added to ``truncated_alerts``."""
    firing = any(a.status is AlertStatus.FIRING for a in alerts)
    return msgspec.structs.replace(
        request,
        alerts=list(alerts),
        status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
        common_labels=common_pairs([a.labels for a in alerts]),
        common_annotations=common_pairs([a.annotations for a in alerts]),
        truncated_alerts=request.truncated_alerts + truncated,
    )
