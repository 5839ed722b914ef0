"""The channel port: send one notification request, say how it went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from notifier.core.retry import FailureKind
from opsmesh.events.notifications import NotificationRequested


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    failure: FailureKind | None = None
    error: str | None = None
    retry_after_s: float | None = None


class Channel(Protocol):
    name: str

    async def send(self, request: NotificationRequested) -> SendResult: ...
