"""What the console reads from the alert-engine, decoded with msgspec.

Only the fields the pages show. The silence matcher is the engine's own request type
(``ApiMatcher``), imported, not retyped; the alert and group shapes are Alertmanager's
API v2 responses, which the engine builds as plain dicts; pending rule alerts are the
engine's ``/api/v1/alerts`` ``pending`` items. The integration tests decode
the real service's answers with these types and check them against its OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from alert_engine.api.shapes import ApiMatcher

__all__ = [
    "Alert",
    "AlertGroup",
    "AlertStatus",
    "ApiMatcher",
    "PendingAlert",
    "Receiver",
    "Silence",
]


class Receiver(msgspec.Struct, frozen=True):
    name: str


class AlertStatus(msgspec.Struct, frozen=True, rename="camel"):
    state: str
    silenced_by: list[str] = []
    inhibited_by: list[str] = []
    muted_by: list[str] = []


class Alert(msgspec.Struct, frozen=True, rename="camel"):
    labels: dict[str, str]
    fingerprint: str
    starts_at: datetime
    status: AlertStatus
    annotations: dict[str, str] = {}
    updated_at: datetime | None = None
    ends_at: datetime | None = None
    receivers: list[Receiver] = []
    generator_url: str = msgspec.field(default="", name="generatorURL")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


class AlertGroup(msgspec.Struct, frozen=True):
    labels: dict[str, str]
    receiver: Receiver
    alerts: list[Alert]


class PendingAlert(msgspec.Struct, frozen=True):
    """A rule alert whose condition holds but whose ``for`` has not elapsed: not routed
    yet, so in no group."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    active_at: float | None = None  # when the condition first held
    value: float | None = None

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


class PendingAnswer(msgspec.Struct, frozen=True):
    pending: list[PendingAlert]


class SilenceStatus(msgspec.Struct, frozen=True):
    state: str


class Silence(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    status: SilenceStatus
    matchers: list[ApiMatcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    updated_at: datetime | None = None


groups_decoder = msgspec.json.Decoder(list[AlertGroup])
pending_decoder = msgspec.json.Decoder(PendingAnswer)
silences_decoder = msgspec.json.Decoder(list[Silence])
silence_decoder = msgspec.json.Decoder(Silence)
