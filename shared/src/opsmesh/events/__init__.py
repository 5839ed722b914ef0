"""Versioned event schemas: typed records, JSON on the wire, a JSON Schema for each."""

from __future__ import annotations

from opsmesh.events.alerts import Alert, AlertRouted, AlertState, AlertStateChanged, AlertStatus
from opsmesh.events.base import Event
from opsmesh.events.health import HealthReported, HealthStatus, ReportKind
from opsmesh.events.metrics import Bucket, MetricKind, MetricSampled
from opsmesh.events.notifications import (
    DeliveryOutcome,
    NotificationDelivered,
    NotificationRequested,
    NotifyReason,
)
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource

ALL_EVENTS: tuple[type[Event], ...] = (
    MetricSampled,
    SlowQueryObserved,
    HealthReported,
    SignalObserved,
    AlertStateChanged,
    AlertRouted,
    NotificationRequested,
    NotificationDelivered,
)

__all__ = [
    "ALL_EVENTS",
    "Alert",
    "AlertRouted",
    "AlertState",
    "AlertStateChanged",
    "AlertStatus",
    "Bucket",
    "DeliveryOutcome",
    "Event",
    "HealthReported",
    "HealthStatus",
    "MetricKind",
    "MetricSampled",
    "NotificationDelivered",
    "NotificationRequested",
    "NotifyReason",
    "ReportKind",
    "SignalKind",
    "SignalObserved",
    "SignalSource",
    "SlowQueryObserved",
]
