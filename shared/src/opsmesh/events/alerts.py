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


class AlertRouted(Event, kw_only=True, frozen=True):
    """An alert on its way to one aggregation group (alert-engine internal; keyed and
    partitioned by group key so one replica owns each group)."""

    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.alert.routed"
    SCHEMA_VERSION: ClassVar[int] = 1

    route_id: Annotated[str, msgspec.Meta(max_length=256)]
    group_key: Annotated[str, msgspec.Meta(max_length=4096)]
    fingerprint: Annotated[str, msgspec.Meta(max_length=64)]
    labels: Labels
    annotations: Annotations = msgspec.field(default_factory=dict)
    starts_at: EpochSeconds
    ends_at: EpochSeconds | None = None
    updated_at: EpochSeconds
    generator_url: Annotated[str, msgspec.Meta(max_length=2048)] = ""
