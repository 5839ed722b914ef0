"""Reading a lost notification's trail back from the topics it passes."""

from __future__ import annotations

import json

from tests.faults.trail import _mentions


def _v(body: dict) -> bytes:
    return json.dumps(body).encode()


def test_signals_are_read_as_firing_or_resolving_by_their_value() -> None:
    ids = {"c.metric.0", "c.health.0"}
    high = _v({"name": "fault_error_ratio", "labels": {"fault_id": "c.metric.0"}, "value": 0.9})
    low = _v({"name": "fault_error_ratio", "labels": {"fault_id": "c.metric.0"}, "value": 0.1})
    fail = _v({"name": "health_check_status", "labels": {"instance": "c.health.0"}, "value": 2})
    assert _mentions("opsmesh.signals", high, ids) == [("c.metric.0", "firing")]
    assert _mentions("opsmesh.signals", low, ids) == [("c.metric.0", "resolved")]
    assert _mentions("opsmesh.signals", fail, ids) == [("c.health.0", "firing")]
    assert _mentions("opsmesh.signals", b"\x00not json", ids) == []


def test_a_routed_alert_is_resolved_only_by_an_end_in_the_past() -> None:
    def routed(ends_at: float | None) -> bytes:
        alert = {"labels": {"fault_id": "c.api.0"}, "ends_at": ends_at, "updated_at": 100.0}
        return _v({"alerts": [alert]})

    ids = {"c.api.0"}
    assert _mentions("opsmesh.alert-groups", routed(None), ids) == [("c.api.0", "firing")]
    assert _mentions("opsmesh.alert-groups", routed(400.0), ids) == [("c.api.0", "firing")]
    assert _mentions("opsmesh.alert-groups", routed(99.0), ids) == [("c.api.0", "resolved")]


def test_a_notification_request_carries_its_status() -> None:
    body = _v({"common_labels": {"fault_id": "c.api.0"}, "status": "resolved"})
    assert _mentions("opsmesh.notifications", body, {"c.api.0"}) == [("c.api.0", "resolved")]
    assert _mentions("opsmesh.notifications", body, {"other"}) == []
