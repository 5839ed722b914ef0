"""Where a lost notification's trail stops: read back only when a case lost something.

A group's alert passes ``opsmesh.signals`` (rule-evaluated kinds; a finding's resolve is
its quiet period, with no signal), then
``opsmesh.alert-groups`` (routed to its group), then ``opsmesh.notifications`` (the
engine decided to notify), then the webhook. The last topic that saw it names the
service that dropped it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opsmesh.topics import ALERT_GROUPS, NOTIFICATIONS, SIGNALS
from tests.faults.accounting import ID_LABEL
from tests.fixtures.kafka import read_all

_HOLDER = {
    "signals": "alert-engine (rule evaluation) dropped it",
    "alert-groups": "alert-engine (grouping, flush) dropped it",
    "notifications": "notifier dropped it",
}


async def trails(bootstrap: str, lost: Iterable[tuple[str, str]]) -> list[str]:
    lost = list(lost)
    ids = {fault_id for fault_id, _ in lost}
    seen: dict[tuple[str, str, str], int] = {}  # (topic, fault id, status) -> records
    for topic in (SIGNALS, ALERT_GROUPS, NOTIFICATIONS):
        for record in await read_all(bootstrap, topic.name):
            for fault_id, status in _mentions(topic.name, record.value, ids):
                key = (topic.name.removeprefix("opsmesh."), fault_id, status)
                seen[key] = seen.get(key, 0) + 1
    lines = []
    for fault_id, status in lost:
        counts = {
            topic: seen.get((topic, fault_id, status), 0)
            for topic in ("signals", "alert-groups", "notifications")
        }
        last = next((t for t in reversed(list(counts)) if counts[t]), None)
        if status == "resolved" and (fault_id, "firing") in lost:
            where = "follows from its lost firing: nothing announced, nothing to resolve"
        elif last is not None:
            where = _HOLDER[last]
        elif ".query." in fault_id and status == "resolved":
            # A finding resolves by its quiet period, on alert-engine's clock: no signal.
            where = "alert-engine (the quiet period's resolve) dropped it"
        elif ".api." in fault_id:
            where = "alert-engine never routed the posted alert"
        else:
            where = "the service that turns its events into signals dropped it"
        found = ", ".join(f"{t} {n}" for t, n in counts.items())
        lines.append(f"trail of {fault_id} {status}: {found} -> {where}")
    return lines


def _mentions(topic: str, value: bytes | None, ids: set[str]) -> list[tuple[str, str]]:
    """(fault id, firing|resolved) for each of ``ids`` a record carries."""
    try:
        body: Any = json.loads(value or b"")
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    if topic == SIGNALS.name:
        labels = body.get("labels") or {}
        fault_id = labels.get(ID_LABEL) or labels.get("instance") or labels.get("database")
        if fault_id not in ids:
            return []
        value_ = float(body.get("value") or 0)
        if body.get("name") == "query_p95_regression":
            return [(fault_id, "firing")]  # its resolve is a quiet period, not a signal
        threshold = 1.0 if body.get("name") == "health_check_status" else 0.5
        return [(fault_id, "firing" if value_ > threshold else "resolved")]
    if topic == ALERT_GROUPS.name:
        out = []
        for alert in body.get("alerts") or []:
            fault_id = (alert.get("labels") or {}).get(ID_LABEL)
            if fault_id in ids:
                # An end in the future is resolve_timeout's, not a resolve.
                ends, updated = alert.get("ends_at"), alert.get("updated_at") or 0
                resolved = ends is not None and ends <= updated + 0.001
                out.append((fault_id, "resolved" if resolved else "firing"))
        return out
    fault_id = (body.get("common_labels") or {}).get(ID_LABEL)
    return [(fault_id, str(body.get("status")))] if fault_id in ids else []
