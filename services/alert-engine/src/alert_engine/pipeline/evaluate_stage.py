"""The signals consumer: evaluate rules, persist transitions, flush due groups.

Order per batch, each step durable before the next: transitions (PostgreSQL) → state
events (Kafka) → notification requests (Kafka, acks=all) → notification log
(PostgreSQL). A crash between the last two re-sends the same request with the same
idempotency key, which the notifier delivers once.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from alert_engine.core.decision import LogEntry
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.flush import plan_flush
from alert_engine.core.grouping import Dispatcher
from alert_engine.pipeline.convert import grouped, notification, state_changed
from alert_engine.storage.alerts import AlertStore
from alert_engine.storage.notification_log import NotificationLog
from opsmesh.clock import Clock
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import BatchResult, Partition, Received
from opsmesh.kafka.producer import EventProducer


class EvaluateStage:
    def __init__(
        self,
        *,
        evaluator: Evaluator,
        dispatcher: Dispatcher,
        alerts: AlertStore,
        log: NotificationLog,
        producer: EventProducer,
        clock: Clock,
        registry: CollectorRegistry,
        external_url: str,
    ) -> None:
        self._evaluator = evaluator
        self._dispatcher = dispatcher
        self._alerts = alerts
        self._log = log
        self._producer = producer
        self._clock = clock
        self._external_url = external_url
        self._entries: dict[tuple[str, str], LogEntry] = {}
        self._restored = False
        self._transitions = Counter(
            "alert_engine_transitions", "Alert state transitions", ["state"], registry=registry
        )
        self._notifications = Counter(
            "alert_engine_notifications_requested",
            "Notification requests by reason",
            ["receiver", "reason"],
            registry=registry,
        )
        self._active = Gauge(
            "alert_engine_alerts_active", "Pending and firing alerts", registry=registry
        )

    async def restore(self) -> None:
        """Rebuild alert state, groups and the log from PostgreSQL (after a restart)."""
        instances = await self._alerts.load()
        self._evaluator.restore(instances)
        now = self._clock.now()
        for instance in instances:
            alert = grouped(instance)
            if alert is not None:
                self._dispatcher.insert(alert, now)
        self._entries = await self._log.load()
        self._restored = True

    async def handle(self, batch: Sequence[Received[SignalObserved]]) -> BatchResult:
        if not self._restored:
            await self.restore()
        now = self._clock.now()
        transitions = [t for record in batch for t in self._evaluator.observe(record.event, now)]
        updates = self._evaluator.take_updates()
        if transitions or updates:
            await self._alerts.record(transitions, updates)
        if transitions:
            await self._producer.publish_many(state_changed(t) for t in transitions)
            for transition in transitions:
                self._transitions.labels(transition.alert.state.value).inc()
                alert = grouped(transition.alert)
                if alert is not None:
                    self._dispatcher.insert(alert, now)
        await self._flush(now)
        self._active.set(len(self._evaluator.active()))
        return BatchResult()

    async def _flush(self, now: float) -> None:
        due = self._dispatcher.due(now)
        if not due:
            return
        plans = [plan_flush(g, self._entries.get((g.key, g.route.receiver)), now) for g in due]
        sending = [p for p in plans if p.reason is not None]
        await self._producer.publish_many(notification(p, now, self._external_url) for p in sending)
        await self._log.record(plans)
        for plan in plans:
            if plan.entry is not None and plan.reason is not None:
                self._entries[(plan.group.key, plan.receiver)] = plan.entry
                self._notifications.labels(plan.receiver, plan.reason.value).inc()
            self._dispatcher.flushed(plan.group, plan.covered, now)

    async def on_assigned(self, partitions: set[Partition]) -> None:
        return None

    async def on_revoked(self, partitions: set[Partition]) -> None:
        return None
