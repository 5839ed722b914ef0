"""CDN purges, planned: what one ``CdnPurgeRequested`` is owed. Pure.

A purge is delivered like a notification, through the same delivery log: its key is
``purge_key(id)`` and each provider is an integration (``cdn:<provider>``), so a provider
is purged once per purge id whatever the redeliveries and replays, and the purges show in
``GET /api/v1/deliveries?receiver=cdn``. An event the providers cannot act on (a scope
with no values, values for ``all``) is rejected whole; a provider it names that is not
configured is owed a dead letter of its own, and the configured ones are purged.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opsmesh.catalogue import CDN_PURGE_DEAD_LETTERED
from opsmesh.events.cdn import (
    PURGE_CHANNEL,
    PURGE_RECEIVER,
    CdnPurgeRequested,
    provider_of,
    purge_id_of,
    purge_key,
)
from opsmesh.events.cdn import purge_integration as integration
from opsmesh.events.signals import SignalObserved
from opsmesh_client.cdn.provider import PurgeRequest, PurgeScope

Pair = tuple[str, str]  # (idempotency key, integration), the delivery log's key


__all__ = [
    "PURGE_CHANNEL",
    "PURGE_RECEIVER",
    "DeadLetterCounts",
    "Pair",
    "PurgeFailure",
    "PurgePlan",
    "dead_letter_signal",
    "integration",
    "plan_purge",
    "provider_of",
    "purge_id_of",
    "purge_key",
    "to_request",
]


class PurgeFailure(enum.StrEnum):
    """Why a provider's purge was dead-lettered (the signal's ``failure`` label)."""

    DETERMINISTIC = "deterministic"  # the provider refused it; the same call fails again
    RETRIES_EXHAUSTED = "retries_exhausted"  # transient failures past the retry deadline
    NOT_CONFIGURED = "not_configured"  # the event names a provider this notifier lacks


def to_request(event: CdnPurgeRequested) -> PurgeRequest:
    """The SDK's request for the event; ValueError when its scope and values disagree."""
    return PurgeRequest(PurgeScope(event.scope.value), tuple(dict.fromkeys(event.values)))


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """One event's plan: rejected (``problem``), or a request for each provider."""

    key: str
    request: PurgeRequest | None = None
    providers: tuple[str, ...] = ()  # configured, to purge
    unknown: tuple[str, ...] = ()  # named by the event, not configured here
    problem: str | None = None

    @property
    def pairs(self) -> list[Pair]:
        return [(self.key, integration(p)) for p in self.providers]

    @property
    def owed(self) -> int:
        """How many outcomes the event waits for before its offset may be committed."""
        return 1 if self.problem is not None else len(self.providers) + len(self.unknown) or 1


def plan_purge(event: CdnPurgeRequested, configured: Sequence[str]) -> PurgePlan:
    key = purge_key(event.id)
    try:
        request = to_request(event)
    except ValueError as exc:
        return PurgePlan(key, problem=f"invalid purge: {exc}")
    wanted = list(dict.fromkeys(event.providers)) or list(configured)
    if not wanted:
        return PurgePlan(key, problem="no CDN provider is configured (NOTIFIER_CDN_PROVIDERS_FILE)")
    known = set(configured)
    return PurgePlan(
        key,
        request=request,
        providers=tuple(p for p in wanted if p in known),
        unknown=tuple(p for p in wanted if p not in known),
    )


@dataclass(slots=True)
class DeadLetterCounts:
    """Per provider, the purges this instance dead-lettered: the signal's running count."""

    counts: dict[str, int] = field(default_factory=dict)

    def signal(
        self, provider: str, failure: PurgeFailure, attempts: int, at: float, detail: str
    ) -> SignalObserved:
        self.counts[provider] = self.counts.get(provider, 0) + 1
        return dead_letter_signal(
            provider, failure, self.counts[provider], attempts=attempts, at=at, detail=detail
        )


def dead_letter_signal(
    provider: str, failure: PurgeFailure, count: int, *, attempts: int, at: float, detail: str
) -> SignalObserved:
    labels: Mapping[str, str] = {"provider": provider, "failure": failure.value}
    return CDN_PURGE_DEAD_LETTERED.observe(
        subject=f"cdn/{provider}",
        labels=labels,
        value=float(count),
        stats={"attempts": float(attempts)},
        observed_at=at,
        detail=detail[:16_000],
    )
