"""Alerts and their state changes."""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import msgspec

from opsmesh.events.base import EpochSeconds, Event, Labels, Name, Text

Annotations = Annotated[dict[str, Text], msgspec.Meta(max_length=64)]


class AlertState(enum.StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertStatus(enum.StrEnum):
    """What a notification says of an alert (Alertmanager's two values)."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(msgspec.Struct, kw_only=True, frozen=True):
    """One alert as carried in a notification, shaped like Alertmanager's."""

    fingerprint: Annotated[str, msgspec.Meta(max_length=64)]
    status: AlertStatus
    labels: Labels
    annotations: Annotations = msgspec.field(default_factory=dict)
    starts_at: EpochSeconds
    ends_at: EpochSeconds | None = None
    generator_url: Annotated[str, msgspec.Meta(max_length=2048)] = ""


class AlertStateChanged(Event, kw_only=True, frozen=True):
    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.alert.state-changed"
    SCHEMA_VERSION: ClassVar[int] = 1

    fingerprint: Annotated[str, msgspec.Meta(max_length=64)]
    rule: Name
    previous: AlertState
    state: AlertState
    labels: Labels
    annotations: Annotations = msgspec.field(default_factory=dict)
    value: float | None = None
    starts_at: EpochSeconds | None = None
    ends_at: EpochSeconds | None = None
    changed_at: EpochSeconds


# Internal to alert-engine: the API has validated these already (names, sizes), and its
# limits are Alertmanager's, wider than the Labels type's, so the batch is not re-checked.
RoutedLabels = Annotated[dict[str, str], msgspec.Meta(max_length=64)]


class RoutedAlert(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One alert on its way to one aggregation group, as the alert book stores it.

    ``previous``/``state``: the state transition this report made, recorded in the
    alert's history by the group's owner. With ``continue`` routes an alert reaches
    several groups; only its copy for the first route carries the transition, so
    history is written once.
    """

    route_id: Annotated[str, msgspec.Meta(max_length=256)]
    group_key: Annotated[str, msgspec.Meta(max_length=4096)]
    fingerprint: Annotated[str, msgspec.Meta(max_length=64)]
    labels: RoutedLabels
    annotations: RoutedLabels = msgspec.field(default_factory=dict)
    starts_at: EpochSeconds
    ends_at: EpochSeconds | None = None
    updated_at: EpochSeconds
    generator_url: Annotated[str, msgspec.Meta(max_length=2048)] = ""
    timeout: bool = False  # ends_at was derived from resolve_timeout, not sent
    source: Annotated[str, msgspec.Meta(max_length=32)] = "api"
    previous: AlertState | None = None
    state: AlertState | None = None
    # The alert's W3C trace context (the signal or request that fired it), so the group's
    # owner continues it in the notification; "" when unknown (records of older engines).
    traceparent: Annotated[str, msgspec.Meta(max_length=64)] = ""


class AlertsRouted(Event, kw_only=True, frozen=True):
    """Alerts on their way to the aggregation groups of one ``opsmesh.alert-groups``
    partition (alert-engine internal). One record per partition per ingest batch, in
    merge order: the replica that owns the partition persists them in the alert book
    and applies them to its groups; the record is acknowledged (acks=all) before the
    POST that made it is answered."""

    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.alerts.routed"
    SCHEMA_VERSION: ClassVar[int] = 1

    alerts: list[RoutedAlert]
    # The engine process that merged them (a per-process id): a replica re-reads from
    # the alert book only what other processes merged.
    origin: Annotated[str, msgspec.Meta(max_length=64)] = ""
