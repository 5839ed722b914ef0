"""The health consumer: apply reports, expire silent checks, store, signal every change."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter

from health_aggregator.core.book import CheckState, HealthBook, StatusChange
from health_aggregator.storage.checks import CheckStore
from opsmesh.clock import Clock
from opsmesh.events.health import HealthReported, HealthStatus
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.topics import SIGNALS

# Signal values rules compare: 0 pass, 1 warn, 2 fail.
STATUS_VALUE = {HealthStatus.PASS: 0.0, HealthStatus.WARN: 1.0, HealthStatus.FAIL: 2.0}
SIGNAL_NAME = "health_check_status"


def to_signal(change: StatusChange) -> Outgoing:
    state = change.state
    subject = f"{state.service}/{state.instance}/{state.check}"
    signal = SignalObserved(
        source=SignalSource.HEALTH,
        kind=SignalKind.STATUS,
        name=SIGNAL_NAME,
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


class HealthStage(StatelessHandler):
    def __init__(
        self,
        *,
        book: HealthBook,
        store: CheckStore,
        producer: EventProducer,
        clock: Clock,
        registry: CollectorRegistry,
    ) -> None:
        self._book = book
        self._store = store
        self._producer = producer
        self._clock = clock
        self._restored = False
        self._changes = Counter(
            "health_aggregator_status_changes",
            "Check status changes",
            ["cause", "status"],
            registry=registry,
        )

    async def handle(self, batch: Sequence[Received[HealthReported]]) -> BatchResult:
        if not self._restored:
            self._book.restore(await self._store.load())
            self._restored = True
        changes: list[StatusChange] = []
        touched: dict[tuple[str, str, str], CheckState] = {}
        for record in batch:
            change = self._book.observe(record.event)
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
        return BatchResult()
