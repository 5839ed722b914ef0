"""Versioned event schemas: typed records, JSON on the wire, a JSON Schema for each."""

from __future__ import annotations

from opsmesh.events.alerts import (
    Alert,
    AlertsRouted,
    AlertState,
    AlertStateChanged,
    AlertStatus,
    RoutedAlert,
)
from opsmesh.events.base import Event
from opsmesh.events.cdn import CdnPurgeRequested, CdnPurgeScope
from opsmesh.events.health import HealthReported, HealthStatus, ReportKind
from opsmesh.events.metrics import Bucket, MetricKind, MetricSampled
from opsmesh.events.notifications import (
    DeliveryOutcome,
    NotificationDelivered,
    NotificationRequested,
    NotifyReason,
)
from opsmesh.events.profiles import ProfiledFunction, ProfileRecorded
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource

ALL_EVENTS: tuple[type[Event], ...] = (
    MetricSampled,
    SlowQueryObserved,
    HealthReported,
    ProfileRecorded,
    SignalObserved,
    AlertStateChanged,
    AlertsRouted,
    NotificationRequested,
    NotificationDelivered,
    CdnPurgeRequested,
)

__all__ = [
    "ALL_EVENTS",
    "Alert",
    "AlertState",
    "AlertStateChanged",
    "AlertStatus",
    "AlertsRouted",
    "Bucket",
    "CdnPurgeRequested",
    "CdnPurgeScope",
    "DeliveryOutcome",
    "Event",
    "HealthReported",
    "HealthStatus",
    "MetricKind",
    "MetricSampled",
    "NotificationDelivered",
    "NotificationRequested",
    "NotifyReason",
    "ProfileRecorded",
    "ProfiledFunction",
    "ReportKind",
    "RoutedAlert",
    "SignalKind",
    "SignalObserved",
    "SignalSource",
    "SlowQueryObserved",
]
