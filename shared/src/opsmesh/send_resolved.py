"""Alertmanager's per-integration ``send_resolved`` defaults, shared by the alert-engine
(whose flush decision must know whether a receiver wants resolved notifications at all)
and the notifier (which sends per integration), so neither retypes them.

Alertmanager's defaults (``config/notifiers.go``): resolved notifications are sent by
default to webhooks, PagerDuty, Opsgenie and Microsoft Teams, not to email or Slack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SEND_RESOLVED_DEFAULT: Mapping[str, bool] = {
    "email": False,
    "slack": False,
    "pagerduty": True,
    "webhook": True,
    "opsgenie": True,
    "msteams": True,
}


def integration_sends_resolved(integration: str, config: Mapping[str, Any]) -> bool:
    """One ``<integration>_configs`` entry's ``send_resolved``, or its default."""
    value = config.get("send_resolved")
    if isinstance(value, bool):
        return value
    return SEND_RESOLVED_DEFAULT.get(integration, True)


def receiver_sends_resolved(receiver: Mapping[str, Any]) -> bool:
    """Whether any integration of a receiver (a ``receivers`` entry) sends resolved
    notifications. A receiver without integrations says True: nothing is sent anyway,
    and the decision then stays Alertmanager's default one."""
    found: list[bool] = []
    for key, items in receiver.items():
        if not key.endswith("_configs") or not isinstance(items, Iterable):
            continue
        integration = key.removesuffix("_configs")
        found.extend(
            integration_sends_resolved(integration, item)
            for item in items
            if isinstance(item, Mapping)
        )
    return any(found) if found else True
