"""Notification requests (alert-engine → notifier) and delivery results (notifier → all)."""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import msgspec

from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.base import EpochSeconds, Event, Labels, Name, Text


class NotifyReason(enum.StrEnum):
    """Why a group was flushed to a receiver (Alertmanager's dedup-stage decisions, named)."""

    FIRST_NOTIFICATION = "first_notification"
    NEW_ALERTS = "new_alerts"
    SOME_RESOLVED = "some_resolved"
    ALL_RESOLVED = "all_resolved"
    REPEAT_INTERVAL_ELAPSED = "repeat_interval_elapsed"


class DeliveryOutcome(enum.StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # already delivered under this idempotency key
    FAILED = "failed"


class NotificationRequested(Event, kw_only=True, frozen=True):
    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.notification.requested"
    SCHEMA_VERSION: ClassVar[int] = 1

    # Derived from (group key, receiver, alert-set hash): the notifier delivers once per key.
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    receiver: Name
    group_key: Annotated[str, msgspec.Meta(max_length=4096)]
    status: AlertStatus
    reason: NotifyReason
    group_labels: Labels = msgspec.field(default_factory=dict)
    common_labels: Labels = msgspec.field(default_factory=dict)
    common_annotations: Annotated[dict[str, Text], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=dict
    )
    alerts: Annotated[list[Alert], msgspec.Meta(max_length=1000)]
    truncated_alerts: Annotated[int, msgspec.Meta(ge=0)] = 0
    external_url: Annotated[str, msgspec.Meta(max_length=2048)] = ""
    requested_at: EpochSeconds


class NotificationDelivered(Event, kw_only=True, frozen=True):
    """The delivery result for one request: delivered, duplicate or failed."""

    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.notification.delivered"
    SCHEMA_VERSION: ClassVar[int] = 1

    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    receiver: Name
    channel: Name
    outcome: DeliveryOutcome
    attempts: int = 1
    error: Text | None = None
    status_code: int | None = None
    finished_at: EpochSeconds
    latency_ms: float | None = None
