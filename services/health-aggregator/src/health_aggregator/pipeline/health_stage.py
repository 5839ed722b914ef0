"""The health consumer: apply reports, expire silent checks, store, signal every change.

Each batch is planned against the owned checks, signalled, stored, and only then applied
(``ChecksPlan``): a store that fails changes nothing, so its retry finds the same changes
(and does not signal them twice).

Ownership follows the partitions: on assignment the stage loads those partitions' checks
from PostgreSQL into its owned checks, on revocation it drops them, and it expires only what it
holds, so replicas never expire (or signal) each other's checks.

A change a report made continues that report's trace; an expiry (no report behind it)
starts one.

Deregistration (``core.checks``): a check silent past its TTL for ``deregister_after_s`` is
signalled with cause ``deregistered`` and value 0 — it no longer fails anything, so an
alert on it resolves — and marked in the table, where every replica's view drops it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from health_aggregator.core.checks import ChangeCause, OwnedChecks, StatusChange, too_far_ahead
from health_aggregator.storage.checks import CheckStore
from opsmesh.catalogue import HEALTH_CHECK_STATUS
from opsmesh.clock import Clock
from opsmesh.events.health import HealthReported, HealthStatus
from opsmesh.kafka.consumer import BatchResult, Partition, Received, Rejection
from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.logging import get_logger
from opsmesh.topics import SIGNALS
from opsmesh.tracing.context import TraceContext

log = get_logger(__name__)

# Signal values rules compare: 0 pass, 1 warn, 2 fail (the catalogue's HEALTH_CHECK_STATUS).
STATUS_VALUE = {HealthStatus.PASS: 0.0, HealthStatus.WARN: 1.0, HealthStatus.FAIL: 2.0}


# A change as its retry plans it again (a TTL expiry's time is the retry's own).
_ChangeId = tuple[str, str, str, HealthStatus | None, HealthStatus, ChangeCause, float]


def _identity(change: StatusChange) -> _ChangeId:
    state = change.state
    return (*state.key, change.previous, state.status, change.cause, state.reported_at)


def to_signal(change: StatusChange, trace: TraceContext | None = None) -> Outgoing:
    state = change.state
    gone = change.cause is ChangeCause.DEREGISTERED
    subject = f"{state.service}/{state.instance}/{state.check}"
    signal = HEALTH_CHECK_STATUS.observe(
        subject=subject,
        labels={
            "service": state.service,
            "instance": state.instance,
            "check": state.check,
            "cause": change.cause.value,
        },
        value=0.0 if gone else STATUS_VALUE[state.status],
        observed_at=change.at,
        detail="deregistered: no report since its TTL ran out" if gone else state.output,
    )
    return Outgoing(SIGNALS, subject, signal, trace=trace)


class OwnershipListener(Protocol):
    """Told which health partitions this replica owns (the active probes follow them)."""

    def assigned(self, partitions: set[int]) -> None: ...

    def revoked(self, partitions: set[int]) -> None: ...


class HealthStage:
    def __init__(
        self,
        *,
        owned: OwnedChecks,
        store: CheckStore,
        producer: EventProducer,
        clock: Clock,
        registry: CollectorRegistry,
        ownership: OwnershipListener | None = None,
        max_future_s: float = math.inf,
        deregister_after_s: float = math.inf,
    ) -> None:
        self._owned = owned
        self._deregister_after_s = deregister_after_s
        self._max_future_s = max_future_s
        self._ownership = ownership
        self._store = store
        self._producer = producer
        self._clock = clock
        self.warmed = False  # state of the assigned partitions loaded (readiness)
        # Changes signalled whose store failed: their retry does not signal them again.
        self._signalled: set[_ChangeId] = set()
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
        # Plan → signal → store → apply. The owned checks change only once the batch's states
        # and history are stored, so a store that fails (PostgreSQL down) leaves it as it
        # was and the retry of the batch finds the same changes again. Signals go first,
        # like the engine's notification requests before its log: a crash between them
        # re-signals on replay (a repeated status is harmless) instead of losing one.
        plan = self._owned.plan()
        # The report that made each change (an expiry has none: it starts a new trace).
        traces: dict[int, TraceContext | None] = {}
        for record in batch:
            change = plan.observe(record.event, record.message.partition)
            if change is not None:
                traces[id(change)] = record.trace
        now = self._clock.now()
        plan.expire(now)
        plan.deregister(now, self._deregister_after_s)
        # A retry after a failed store does not signal again what it already signalled.
        fresh = [c for c in plan.changes if _identity(c) not in self._signalled]
        if fresh:
            await self._producer.publish_many(to_signal(c, traces.get(id(c))) for c in fresh)
            self._signalled.update(_identity(c) for c in fresh)
        await self._store.save(
            list(plan.states.values()),
            plan.changes,
            [(state, now) for state in plan.removed.values()],
        )
        self._signalled.clear()
        self._owned.apply(plan)
        for change in plan.changes:
            self._changes.labels(change.cause.value, change.state.status.value).inc()
        self._held.set(len(self._owned))
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
        self._owned.restore(states)
        if self._ownership is not None:
            self._ownership.assigned(set(numbers))
        self.warmed = True
        log.info("health partitions assigned", partitions=numbers, checks=len(states))

    async def on_revoked(self, partitions: set[Partition]) -> None:
        if self._ownership is not None:
            self._ownership.revoked({p for _, p in partitions})
        dropped = self._owned.drop_partitions(p for _, p in partitions)
        log.info("health partitions revoked", partitions=len(partitions), checks=len(dropped))
