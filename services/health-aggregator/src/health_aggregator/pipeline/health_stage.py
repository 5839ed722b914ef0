"""The health consumer: apply reports, expire silent checks, store, signal every change.

Ownership follows the partitions: on assignment the stage loads those partitions' checks
from PostgreSQL into its book, on revocation it drops them, and it expires only what it
holds, so replicas never expire (or signal) each other's checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from health_aggregator.core.book import CheckState, HealthBook, StatusChange, too_far_ahead
from health_aggregator.storage.checks import CheckStore
from opsmesh.catalogue import HEALTH_CHECK_STATUS
from opsmesh.clock import Clock
from opsmesh.events.health import HealthReported, HealthStatus
from opsmesh.kafka.consumer import BatchResult, Partition, Received, Rejection
from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.logging import get_logger
from opsmesh.topics import SIGNALS

log = get_logger(__name__)

# Signal values rules compare: 0 pass, 1 warn, 2 fail (the catalogue's HEALTH_CHECK_STATUS).
STATUS_VALUE = {HealthStatus.PASS: 0.0, HealthStatus.WARN: 1.0, HealthStatus.FAIL: 2.0}


def to_signal(change: StatusChange) -> Outgoing:
    state = change.state
    subject = f"{state.service}/{state.instance}/{state.check}"
    signal = HEALTH_CHECK_STATUS.observe(
        subject=subject,
        labels={
            "service": state.service,
            "instance": state.instance,
            "check": state.check,
            "cause": change.cause.value,
        },
        value=STATUS_VALUE[state.status],
        observed_at=change.at,
        detail=state.output,
    )
    return Outgoing(SIGNALS, subject, signal)


class OwnershipListener(Protocol):
    """Told which health partitions this replica owns (the active probes follow them)."""

    def assigned(self, partitions: set[int]) -> None: ...

    def revoked(self, partitions: set[int]) -> None: ...


class HealthStage:
    def __init__(
        self,
        *,
        book: HealthBook,
        store: CheckStore,
        producer: EventProducer,
        clock: Clock,
        registry: CollectorRegistry,
        ownership: OwnershipListener | None = None,
        max_future_s: float = math.inf,
    ) -> None:
        self._book = book
        self._max_future_s = max_future_s
        self._ownership = ownership
        self._store = store
        self._producer = producer
        self._clock = clock
        self.warmed = False  # state of the assigned partitions loaded (readiness)
        self._changes = Counter(
            "health_aggregator_status_changes",
            "Check status changes",
            ["cause", "status"],
            registry=registry,
        )
        self._held = Gauge(
            "health_aggregator_checks_owned",
            "Checks held by this replica (its partitions)",
            registry=registry,
        )

    async def handle(self, batch: Sequence[Received[HealthReported]]) -> BatchResult:
        batch, refused = self._within_horizon(batch)
        changes: list[StatusChange] = []
        touched: dict[tuple[str, str, str], CheckState] = {}
        observe = self._book.observe
        for record in batch:
            change = observe(record.event, record.message.partition)
            if change is not None:
                changes.append(change)
        for record in batch:
            e = record.event
            current = self._book.get((e.service, e.instance, e.check))
            if current is not None:
                touched[current.key] = current
        expired = self._book.expire(self._clock.now())
        changes.extend(expired)
        for change in expired:
            touched[change.state.key] = change.state
        await self._store.save(list(touched.values()), changes)
        if changes:
            await self._producer.publish_many(to_signal(c) for c in changes)
            for change in changes:
                self._changes.labels(change.cause.value, change.state.status.value).inc()
        self._held.set(len(self._book))
        return BatchResult(rejected=refused)

    def _within_horizon(
        self, batch: Sequence[Received[HealthReported]]
    ) -> tuple[Sequence[Received[HealthReported]], list[Rejection]]:
        """The reports to apply, and a dead letter for each stamped too far ahead."""
        now = self._clock.now()
        horizon = now + self._max_future_s
        if all(record.event.reported_at <= horizon for record in batch):
            return batch, []
        kept: list[Received[HealthReported]] = []
        refused: list[Rejection] = []
        for record in batch:
            problem = too_far_ahead(record.event, now, self._max_future_s)
            if problem is None:
                kept.append(record)
            else:
                refused.append(Rejection(record.raw, DeadLetterReason.SCHEMA_VIOLATION, problem))
        return kept, refused

    async def on_assigned(self, partitions: set[Partition]) -> None:
        numbers = sorted(p for _, p in partitions)
        states = await self._store.load(numbers) if numbers else []
        self._book.restore(states)
        if self._ownership is not None:
            self._ownership.assigned(set(numbers))
        self.warmed = True
        log.info("health partitions assigned", partitions=numbers, checks=len(states))

    async def on_revoked(self, partitions: set[Partition]) -> None:
        if self._ownership is not None:
            self._ownership.revoked({p for _, p in partitions})
        dropped = self._book.drop_partitions(p for _, p in partitions)
        log.info("health partitions revoked", partitions=len(partitions), checks=len(dropped))
