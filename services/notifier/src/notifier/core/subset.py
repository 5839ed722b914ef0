"""A notification narrowed to some of its alerts, as Alertmanager would build it.

Alertmanager computes a notification's template data (``template.Data``: ``status``,
``commonLabels``, ``commonAnnotations``) from the alerts an integration is actually sent,
after its RetryStage dropped resolved alerts (``send_resolved: false``) and after the
webhook integration cut the list to ``max_alerts``; the group labels, receiver and reason
stay those of the group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested


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
        common_labels=_common([a.labels for a in alerts]),
        common_annotations=_common([a.annotations for a in alerts]),
        truncated_alerts=request.truncated_alerts + truncated,
    )


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        for key in [k for k, v in common.items() if other.get(k) != v]:
            del common[key]
    return common
