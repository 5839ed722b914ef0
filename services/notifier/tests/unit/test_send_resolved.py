"""What an integration with send_resolved off is sent (Alertmanager's RetryStage)."""

from __future__ import annotations

import msgspec
import pytest

from notifier.core.send_resolved import for_integration
from notifier.samples import sample_request
from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested, NotifyReason

FIRING, RESOLVED = AlertStatus.FIRING, AlertStatus.RESOLVED


def group(reason: NotifyReason, *statuses: AlertStatus) -> NotificationRequested:
    alerts = [
        Alert(
            fingerprint=f"{i:016x}",
            status=status,
            labels={"alertname": "A", "i": str(i), "shared": "yes"},
            annotations={"summary": status.value, "team": "db"},
            starts_at=1_700_000_000.0,
            ends_at=1_700_000_100.0 if status is RESOLVED else None,
        )
        for i, status in enumerate(statuses)
    ]
    return msgspec.structs.replace(
        sample_request("r"),
        reason=reason,
        alerts=alerts,
        status=FIRING if FIRING in statuses else RESOLVED,
        common_labels={"alertname": "A", "shared": "yes"},
        common_annotations={"team": "db"},
    )


def test_with_send_resolved_everything_is_sent_unchanged() -> None:
    request = group(NotifyReason.SOME_RESOLVED, FIRING, RESOLVED)
    assert for_integration(request, send_resolved=True) is request


@pytest.mark.parametrize(
    "request_",
    [
        group(NotifyReason.SOME_RESOLVED, FIRING, RESOLVED),
        group(NotifyReason.ALL_RESOLVED, RESOLVED, RESOLVED),
    ],
)
def test_nothing_when_only_resolves_caused_it_or_nothing_fires(
    request_: NotificationRequested,
) -> None:
    assert for_integration(request_, send_resolved=False) is None


def test_the_firing_alerts_only_with_common_data_over_them() -> None:
    request = group(NotifyReason.NEW_ALERTS, FIRING, RESOLVED, FIRING)
    sent = for_integration(request, send_resolved=False)
    assert sent is not None
    assert [a.status for a in sent.alerts] == [FIRING, FIRING]
    assert sent.status is FIRING
    assert sent.common_annotations == {"summary": "firing", "team": "db"}
    assert sent.common_labels == {"alertname": "A", "shared": "yes"}
    assert sent.idempotency_key == request.idempotency_key


def test_all_firing_is_sent_as_it_is() -> None:
    request = group(NotifyReason.REPEAT_INTERVAL_ELAPSED, FIRING, FIRING)
    assert for_integration(request, send_resolved=False) is request
