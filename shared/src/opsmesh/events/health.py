"""Health reports and heartbeats from service instances and active probes."""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import msgspec

from opsmesh.events.base import EpochSeconds, Event, Name, Text


class HealthStatus(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"
    FAIL = "fail"


class ReportKind(enum.StrEnum):
    CHECK = "check"
    HEARTBEAT = "heartbeat"


class HealthReported(Event, kw_only=True, frozen=True):
    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.health.reported"
    SCHEMA_VERSION: ClassVar[int] = 1

    service: Name
    instance: Name
    check: Name = "heartbeat"
    kind: ReportKind = ReportKind.CHECK
    status: HealthStatus
    observed_value: float | str | None = None
    output: Text | None = None
    critical: bool = True
    # After ttl_s without a new report the check counts as failed (Consul TTL semantics).
    ttl_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 30.0
    reported_at: EpochSeconds
