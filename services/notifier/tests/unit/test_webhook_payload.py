"""The webhook body is Alertmanager's webhook v4 payload, field for field."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import msgspec
import pytest

from notifier.core import pagerduty_event
from notifier.core.webhook_payload import rfc3339, webhook_payload
from notifier.samples import sample_request
from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested, NotifyReason

STARTS = 1_700_000_000.0  # 2023-11-14T22:13:20Z
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

ALERT_FIELDS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}
TOP_FIELDS = {
    "version",
    "groupKey",
    "truncatedAlerts",
    "status",
    "receiver",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "alerts",
    "notification_reason",
    "routeLabels",
}


def request() -> NotificationRequested:
    return NotificationRequested(
        idempotency_key="k-123",
        receiver="team-db",
        group_key='{}:{alertname="DiskFull"}',
        status=AlertStatus.FIRING,
        reason=NotifyReason.NEW_ALERTS,
        group_labels={"alertname": "DiskFull"},
        common_labels={"alertname": "DiskFull", "env": "prod"},
        common_annotations={"runbook_url": "https://runbooks/disk"},
        alerts=[
            Alert(
                fingerprint="0123456789abcdef",
                status=AlertStatus.FIRING,
                labels={"alertname": "DiskFull", "env": "prod", "host": "a"},
                annotations={"summary": "disk 95%"},
                starts_at=STARTS,
                generator_url="https://opsmesh/rules/DiskFull",
            ),
            Alert(
                fingerprint="fedcba9876543210",
                status=AlertStatus.RESOLVED,
                labels={"alertname": "DiskFull", "env": "prod", "host": "b"},
                starts_at=STARTS - 600.5,
                ends_at=STARTS + 60,
            ),
        ],
        truncated_alerts=2,
        external_url="https://opsmesh.example",
        requested_at=STARTS + 61,
    )


def test_top_level_fields() -> None:
    body = webhook_payload(request())
    assert set(body) >= TOP_FIELDS
    assert body["version"] == "4"
    assert body["groupKey"] == '{}:{alertname="DiskFull"}'
    assert body["truncatedAlerts"] == 2
    assert body["status"] == "firing"
    assert body["receiver"] == "team-db"
    assert body["groupLabels"] == {"alertname": "DiskFull"}
    assert body["commonLabels"] == {"alertname": "DiskFull", "env": "prod"}
    assert body["commonAnnotations"] == {"runbook_url": "https://runbooks/disk"}
    assert body["externalURL"] == "https://opsmesh.example"


def test_opsmesh_additions() -> None:
    body = webhook_payload(request())
    assert body["notificationReason"] == "new_alerts"
    assert body["idempotencyKey"] == "k-123"


def test_alert_fields() -> None:
    firing, resolved = webhook_payload(request())["alerts"]
    assert set(firing) == ALERT_FIELDS
    assert firing == {
        "status": "firing",
        "labels": {"alertname": "DiskFull", "env": "prod", "host": "a"},
        "annotations": {"summary": "disk 95%"},
        "startsAt": "2023-11-14T22:13:20Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://opsmesh/rules/DiskFull",
        "fingerprint": "0123456789abcdef",
    }
    assert resolved["status"] == "resolved"
    assert resolved["annotations"] == {}
    assert resolved["generatorURL"] == ""
    assert resolved["endsAt"] == "2023-11-14T22:14:20Z"


def test_times_are_rfc3339_utc_and_exact() -> None:
    for alert in webhook_payload(request())["alerts"]:
        for key in ("startsAt", "endsAt"):
            assert RFC3339.match(alert[key]), alert[key]
            assert alert[key].endswith("Z")
    _, resolved = webhook_payload(request())["alerts"]
    parsed = datetime.fromisoformat(resolved["startsAt"])
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.timestamp() == STARTS - 600.5


def test_resolved_group_status() -> None:
    base = request()
    resolved_only = NotificationRequested(
        idempotency_key="k",
        receiver=base.receiver,
        group_key=base.group_key,
        status=AlertStatus.RESOLVED,
        reason=NotifyReason.ALL_RESOLVED,
        alerts=[base.alerts[1]],
        requested_at=STARTS,
    )
    body = webhook_payload(resolved_only)
    assert body["status"] == "resolved"
    assert body["notificationReason"] == "all_resolved"
    assert (body["truncatedAlerts"], body["externalURL"], body["groupLabels"]) == (0, "", {})


def test_payload_is_plain_json() -> None:
    body = webhook_payload(request())
    assert json.loads(json.dumps(body)) == body


@pytest.mark.parametrize(
    ("epoch", "shown"),
    [
        (253_402_300_800.0, "9999-12-31T23:59:59.999999Z"),  # 10000-01-01T00:00:00Z
        (253_402_387_140.0, "9999-12-31T23:59:59.999999Z"),  # 9999-12-31T23:59:59-23:59
        (1e300, "9999-12-31T23:59:59.999999Z"),
        (float("inf"), "9999-12-31T23:59:59.999999Z"),
        (253_402_300_799.0, "9999-12-31T23:59:59Z"),
        (0.0, "1970-01-01T00:00:00Z"),
    ],
)
def test_times_past_year_9999_are_clamped_never_raised(epoch: float, shown: str) -> None:
    assert rfc3339(epoch) == shown


@pytest.mark.parametrize(
    ("epoch", "shown"),
    [
        (1_700_000_000.5, "2023-11-14T22:13:20.5Z"),
        (1_700_000_000.25, "2023-11-14T22:13:20.25Z"),
        (1_700_000_000.125, "2023-11-14T22:13:20.125Z"),
        (1_700_000_000.000001, "2023-11-14T22:13:20.000001Z"),
        (1_700_000_000.12345, "2023-11-14T22:13:20.12345Z"),
        (1_700_000_000.0, "2023-11-14T22:13:20Z"),
    ],
)
def test_fractions_are_written_as_gos_rfc3339nano(epoch: float, shown: str) -> None:
    """Go trims a fraction's trailing zeros and drops an empty one."""
    assert rfc3339(epoch) == shown


def test_a_far_future_ends_at_builds_a_payload() -> None:
    alert = Alert(
        fingerprint="f",
        status=AlertStatus.RESOLVED,
        labels={"alertname": "A"},
        starts_at=1_700_000_000.0,
        ends_at=253_402_387_140.0,
    )
    request = sample_request("r")
    far = msgspec.structs.replace(request, alerts=[alert])
    assert webhook_payload(far)["alerts"][0]["endsAt"] == "9999-12-31T23:59:59.999999Z"
    summary = pagerduty_event.event(
        far, routing_key="k", summary="s", source="x", default_severity="error"
    )
    assert summary["payload"]["timestamp"] == "2023-11-14T22:13:20Z"


def test_a_firing_alert_shows_alertmanagers_zero_ends_at_whatever_is_stored() -> None:
    """alert.Alerts (alert/alert.go): an end not reached yet is not exposed."""
    base = request()
    stored_end = msgspec.structs.replace(base.alerts[0], ends_at=STARTS + 300)
    body = webhook_payload(msgspec.structs.replace(base, alerts=[stored_end]))
    assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (NotifyReason.FIRST_NOTIFICATION, "first notification"),
        (NotifyReason.NEW_ALERTS, "new alerts added"),
        (NotifyReason.SOME_RESOLVED, "some alerts resolved"),
        (NotifyReason.ALL_RESOLVED, "all alerts resolved"),
        (NotifyReason.REPEAT_INTERVAL_ELAPSED, "repeat interval elapsed"),
    ],
)
def test_the_reason_in_alertmanagers_words(reason: NotifyReason, words: str) -> None:
    body = webhook_payload(msgspec.structs.replace(request(), reason=reason))
    assert body["notification_reason"] == words
    assert body["routeLabels"] == {}


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("team-db", "team-db"),
        ("team.db", "team\\.db"),
        ("a+b (pager) [1]|{x}^$*?\\", "a\\+b \\(pager\\) \\[1\\]\\|\\{x\\}\\^\\$\\*\\?\\\\"),
        ("on call #1 & co ~", "on call #1 & co ~"),
    ],
)
def test_the_receiver_is_quoted_as_gos_regexp_quote_meta(name: str, shown: str) -> None:
    """Template.Data (template/template.go) stores regexp.QuoteMeta(receiver)."""
    assert webhook_payload(msgspec.structs.replace(request(), receiver=name))["receiver"] == shown


def test_max_alerts_sends_the_first_alerts_with_their_own_common_labels_and_status() -> None:
    """Alertmanager's webhook truncates before building the template data
    (``notify/webhook/webhook.go``): status and common labels/annotations are the sent
    alerts', the group labels stay the group's."""
    base = request()
    resolved_first = msgspec.structs.replace(
        base,
        alerts=[base.alerts[1], base.alerts[0]],
        common_labels={"alertname": "DiskFull", "env": "prod"},
        common_annotations={},
    )
    body = webhook_payload(resolved_first, max_alerts=1)
    assert [a["labels"]["host"] for a in body["alerts"]] == ["b"]
    assert body["truncatedAlerts"] == 2 + 1  # the request's own, plus the one left out
    assert body["status"] == "resolved"
    assert body["commonLabels"] == {"alertname": "DiskFull", "env": "prod", "host": "b"}
    assert body["commonAnnotations"] == {}
    assert body["groupLabels"] == {"alertname": "DiskFull"}


@pytest.mark.parametrize("max_alerts", [0, 2, 3])
def test_max_alerts_at_or_above_the_count_changes_nothing(max_alerts: int) -> None:
    assert webhook_payload(request(), max_alerts=max_alerts) == webhook_payload(request())
