"""The engine's I/O shell: one lock around the pure core, and every change made durable
before it is acted on.

Replicas: every replica ingests (signals, the API) into the durable alert book and
routes each alert to its groups through ``opsmesh.alert-groups``, partitioned by group
key. A replica flushes only the groups of the partitions it is assigned, so each group
has one writer; on assignment it rebuilds those groups from PostgreSQL, so a replica
that dies loses nothing. The book, silences and notification log are shared through
PostgreSQL and re-read every ``sync`` for inhibition and the APIs.

Order for a flush: plan (pure) → rate limits (Redis) → notification requests to Kafka
(acks=all) → notification log (PostgreSQL) → groups updated in memory. A crash after the
requests but before the log re-sends the same idempotency keys, which the notifier
delivers once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from alert_engine.core.alerts import AlertSource, StoredAlert
from alert_engine.core.book import IngestOutcome
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen, Transition
from alert_engine.core.flush import FlushPlan, MuteReason
from alert_engine.core.grouping import GroupedAlert
from alert_engine.core.rules import Rule, parse_rules
from alert_engine.core.silences import Silence, SilenceBook
from alert_engine.pipeline.convert import notification, state_changed
from alert_engine.pipeline.route_out import Ingested, RouteOut
from alert_engine.ratelimit import RateLimiter
from alert_engine.storage.alerts import AlertStore, SeriesStore
from alert_engine.storage.book import BookStore
from alert_engine.storage.notification_log import NotificationLog
from alert_engine.storage.rule_groups import RuleGroupStore
from opsmesh.clock import Clock
from opsmesh.events.alerts import AlertsRouted, AlertState, AlertStatus, RoutedAlert
from opsmesh.kafka.producer import EventProducer, acknowledged
from opsmesh.logging import get_logger

log = get_logger(__name__)

RESOLVED_RETENTION_S = 15 * 60  # resolved alerts stay visible (and re-sendable) this long
SYNC_MARGIN_S = 10.0  # how far back each incremental re-read of the book reaches


def _stored(r: RoutedAlert) -> StoredAlert:
    return StoredAlert(
        r.fingerprint,
        r.labels,
        r.annotations,
        r.starts_at,
        r.ends_at,
        r.updated_at,
        r.generator_url,
        r.timeout,
        AlertSource(r.source),
    )


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts_received = Counter(
            "alert_engine_alerts_received",
            "Alerts ingested",
            ["source", "outcome"],
            registry=registry,
        )
        self.transitions = Counter(
            "alert_engine_transitions", "Rule alert state transitions", ["state"], registry=registry
        )
        self.notifications = Counter(
            "alert_engine_notifications_requested",
            "Notification requests by reason",
            ["receiver", "reason"],
            registry=registry,
        )
        self.suppressed = Counter(
            "alert_engine_notifications_suppressed",
            "Due flushes that sent nothing, by reason",
            ["receiver", "reason"],
            registry=registry,
        )
        self.groups = Gauge(
            "alert_engine_aggregation_groups", "Aggregation groups", registry=registry
        )
        self.alerts = Gauge(
            "alert_engine_alerts", "Alerts in the book", ["state"], registry=registry
        )


class EngineState:
    def __init__(
        self,
        *,
        engine: Engine,
        evaluator: Evaluator,
        rule_store: AlertStore,
        series_store: SeriesStore,
        book_store: BookStore,
        notification_log: NotificationLog,
        rule_groups: RuleGroupStore,
        file_rules: Sequence[Rule] = (),
        producer: EventProducer,
        routing_producer: EventProducer | None = None,
        limiter: RateLimiter,
        clock: Clock,
        registry: CollectorRegistry,
        external_url: str,
    ) -> None:
        self.engine = engine
        self.evaluator = evaluator
        self._rules = rule_store
        self._series = series_store
        self.store = book_store
        self._log = notification_log
        self._rule_groups = rule_groups
        self._file_rules = list(file_rules)
        self.api_rule_sources: dict[str, str] = {}
        self._rules_version: tuple[int, float] = (0, 0.0)
        self._producer = producer
        # Records to the groups' owners; a producer without linger, as a POST waits on it.
        self._routing_producer = routing_producer or producer
        self.origin = uuid.uuid4().hex[:16]  # this process, in the rows it writes
        self._route_out = RouteOut(self.origin)
        self._limiter = limiter
        self.clock = clock
        self._external_url = external_url
        self.metrics = EngineMetrics(registry)
        self.lock = asyncio.Lock()
        # Held while the evaluator runs in a render thread (see evaluate_stage).
        self.evaluating = asyncio.Lock()
        self.flushing = asyncio.Lock()  # held for a whole flush; taken before ``lock``
        self.entries: dict[tuple[str, str], LogEntry] = {}
        self.restored = asyncio.Event()
        self.owned: set[int] = set()
        self._synced_to = 0.0
        self.wake = asyncio.Event()  # set when something may be due sooner than the next tick

    async def restore(self) -> None:
        """Rebuild everything from PostgreSQL (a restart or failover loses nothing)."""
        async with self.lock:
            now = self.clock.now()
            self.evaluator.restore(await self._rules.load())
            self.evaluator.restore_series(await self._series.load())
            await self._read_book(now, full=True)
            self.engine.silences = SilenceBook(await self.store.load_silences())
            self.entries = await self._log.load()
            await self._reload_rules()
            self.restored.set()
            log.info(
                "state restored",
                alerts=len(self.engine.book),
                silences=len(self.engine.silences.all()),
                log_entries=len(self.entries),
            )

    # -- input ---------------------------------------------------------------------

    async def on_transitions(
        self,
        transitions: Sequence[Transition],
        updates: Sequence[AlertInstance],
        seen: Sequence[SeriesSeen] = (),
    ) -> None:
        """Rule evaluation results: rule state, alert book, state events, groups."""
        await self._series.save(seen)
        if not transitions and not updates:
            return
        now = self.clock.now()
        await self._rules.record(transitions, updates)
        stored = [s for s in (self._from_rule(t.alert, now) for t in transitions) if s is not None]
        accepted = self._ingest(stored, now, AlertSource.RULE)
        await self.store.save(accepted, origin=self.origin)
        if transitions:
            await self._producer.publish_many(state_changed(t) for t in transitions)
        for transition in transitions:
            self.metrics.transitions.labels(transition.alert.state.value).inc()
        await acknowledged(
            await self._routing_producer.enqueue(
                self._route_out.records(self.engine, [(a, None, None) for a in accepted])
            )
        )

    async def post_alerts(self, alerts: Sequence[StoredAlert]) -> tuple[int, int]:
        """Alerts from the API; returns (accepted, dropped by the ingest limit).

        Merged into the book and queued to their groups' partitions under the lock, so
        the records of concurrent POSTs are in merge order; answered once Kafka has them
        (acks=all). The groups' owners make them durable in PostgreSQL (``persist``)."""
        async with self.lock:
            now = self.clock.now()
            accepted = self._ingest_api(alerts, now)
            acks = await self._routing_producer.enqueue(
                self._route_out.records(self.engine, accepted)
            )
        await acknowledged(acks)
        return len(accepted), len(alerts) - len(accepted)

    def _ingest_api(self, alerts: Sequence[StoredAlert], now: float) -> list[Ingested]:
        book = self.engine.book
        counts = dict.fromkeys(IngestOutcome, 0)
        out: list[Ingested] = []
        for alert in alerts:
            old = book.get(alert.fingerprint)
            was_firing = old is not None and not old.resolved(now)
            outcome, merged = book.put(alert, now)
            counts[outcome] += 1
            if outcome is IngestOutcome.LIMITED or merged is None:
                continue
            if not was_firing and not alert.resolved(now):
                out.append((merged, AlertState.INACTIVE, AlertState.FIRING))
            elif was_firing and alert.resolved(now):
                out.append((merged, AlertState.FIRING, AlertState.RESOLVED))
            else:
                out.append((merged, None, None))
        for outcome, count in counts.items():
            if count:
                self.metrics.alerts_received.labels(AlertSource.API.value, outcome.value).inc(count)
        return out

    # -- group ownership -----------------------------------------------------------

    def owns(self, group_key: str) -> bool:
        return self._route_out.partition(group_key) in self.owned

    async def persist(self, records: Sequence[bytes]) -> None:
        """Make routed alerts durable (book rows and history) before they are applied:
        the consumer commits only after, so a crash replays them."""
        await self.store.persist_routed(records, self.origin)

    def on_routed(self, batches: Sequence[AlertsRouted]) -> None:
        now = self.clock.now()
        book = self.engine.book
        firing = AlertStatus.FIRING
        for batch in batches:
            mine = batch.origin == self.origin
            for r in batch.alerts:
                if not self.owns(r.group_key):
                    continue  # a stale record from before a rebalance
                if not mine:
                    held = book.get(r.fingerprint)
                    if held is None or held.updated_at < r.updated_at:
                        book.restore([_stored(r)], now)
                alert = GroupedAlert(
                    r.fingerprint,
                    r.labels,
                    r.annotations,
                    r.starts_at,
                    r.ends_at,
                    firing,
                    r.generator_url,
                )
                self.engine.apply_routed(r.route_id, alert, now, r.group_key)
        self.wake.set()

    async def assigned(self, partitions: set[int]) -> None:
        """Take over groups: re-read the shared state, then rebuild the new partitions' groups."""
        async with self.flushing, self.lock:
            now = self.clock.now()
            await self._read_book(now, full=True)
            self.entries = await self._log.load()
            new = partitions - self.owned
            self.owned |= partitions
            self.engine.rebuild_owned(now, lambda key: self._route_out.partition(key) in new)
            log.info(
                "groups assigned",
                partitions=sorted(partitions),
                groups=len(self.engine.dispatcher.groups()),
            )
        self.wake.set()

    async def revoked(self, partitions: set[int]) -> None:
        async with self.flushing, self.lock:
            self.owned -= partitions
            dropped = self.engine.drop_unowned(self.owns)
            log.info("groups revoked", partitions=sorted(partitions), dropped=dropped)

    async def sync(self) -> None:
        """Pick up what other replicas wrote: alerts, silences, rule groups."""
        now = self.clock.now()
        await self._read_book(now, full=False)
        self.engine.silences = SilenceBook(await self.store.load_silences())
        if await self._rule_groups.version() != self._rules_version:
            await self._reload_rules()

    # -- rules ---------------------------------------------------------------------

    @property
    def file_groups(self) -> set[str]:
        return {r.group for r in self._file_rules}

    async def put_rule_group(self, name: str, source: str) -> None:
        """Store a validated group (its text parsed to exactly this group) and reload."""
        await self._rule_groups.put(name, source)
        await self._reload_rules()

    async def delete_rule_group(self, name: str) -> bool:
        deleted = await self._rule_groups.delete(name)
        if deleted:
            await self._reload_rules()
        return deleted

    async def _reload_rules(self) -> None:
        """A new evaluator over file + API rules, carrying over the state of rules that stay."""
        self._rules_version = await self._rule_groups.version()
        self.api_rule_sources = await self._rule_groups.load()
        rules = list(self._file_rules)
        for name, source in sorted(self.api_rule_sources.items()):
            rules.extend(parse_rules(source, source=f"api:{name}"))
        async with self.evaluating:
            old = self.evaluator
            evaluator = Evaluator(rules)
            evaluator.restore(old.active())
            evaluator.restore_series(old.seen_series())
            self.evaluator = evaluator

    async def _read_book(self, now: float, *, full: bool) -> None:
        if full:
            alerts = await self.store.load()
            self.engine.book.replace_all(alerts, now, forgotten_after_s=RESOLVED_RETENTION_S)
        else:
            # Rows reach the table after their owner consumes them, not in updated_at
            # order: re-read a margin, the book keeps the newer of what it holds.
            alerts = await self.store.load(self._synced_to - SYNC_MARGIN_S, not_from=self.origin)
            self.engine.book.restore(alerts, now)
        if alerts:
            self._synced_to = max(self._synced_to, *(a.updated_at for a in alerts))

    def _ingest(
        self, alerts: Sequence[StoredAlert], now: float, source: AlertSource
    ) -> list[StoredAlert]:
        accepted = []
        for alert in alerts:
            outcome, merged = self.engine.book.put(alert, now)
            self.metrics.alerts_received.labels(source.value, outcome.value).inc()
            if outcome is not IngestOutcome.LIMITED and merged is not None:
                accepted.append(merged)
        return accepted

    def _from_rule(self, alert: AlertInstance, now: float) -> StoredAlert | None:
        if alert.state is AlertState.FIRING:
            ends = None
        elif alert.state is AlertState.RESOLVED:
            ends = alert.resolved_at if alert.resolved_at is not None else now
        else:
            return None  # pending alerts are never sent, as in Prometheus
        return StoredAlert(
            fingerprint=alert.fingerprint,
            labels=alert.labels,
            annotations=alert.annotations,
            starts_at=alert.active_at if alert.active_at is not None else now,
            ends_at=ends,
            updated_at=now,
            generator_url=f"{self._external_url}/api/v1/rules?name={alert.rule}",
            source=AlertSource.RULE,
        )

    # -- silences ------------------------------------------------------------------

    async def set_silence(self, silence: Silence) -> Silence:
        now = self.clock.now()
        stored, changed = self.engine.silences.set(silence, now)
        await self.store.save_silences(changed)
        self.wake.set()
        return stored

    async def expire_silence(self, silence_id: str) -> Silence:
        expired = self.engine.silences.expire(silence_id, self.clock.now())
        await self.store.save_silences([expired])
        return expired

    # -- flushing ------------------------------------------------------------------

    async def flush(self) -> int:
        """Plan every due group, send what needs sending; returns requests produced.

        Planned under the lock; the I/O (rate limits, requests, log) runs outside it, so
        ingest is never queued behind a flush; the outcome is applied under the lock
        again. ``flushing`` keeps a rebalance from handing groups over mid-flush."""
        async with self.flushing:
            async with self.lock:
                now = self.clock.now()
                plans = self.engine.plan(now, self.entries)
            if not plans:
                return 0
            candidates: list[FlushPlan] = []
            for plan in plans:
                if plan.reason is None:
                    if plan.mute is not None:
                        self.metrics.suppressed.labels(plan.receiver, plan.mute.value).inc()
                    continue
                candidates.append(plan)
            allowed = await self._limiter.allow_many([p.receiver for p in candidates], now)
            sending = [p for p, ok in zip(candidates, allowed, strict=True) if ok]
            postponed = [p for p, ok in zip(candidates, allowed, strict=True) if not ok]
            await self._producer.publish_many(
                notification(p, now, self._external_url) for p in sending
            )
            await self._log.record(sending)
            for plan in postponed:
                self.metrics.suppressed.labels(plan.receiver, MuteReason.RATE_LIMITED.value).inc()
            await self.store.suppressed(
                [
                    (p.group.key, p.receiver, MuteReason.RATE_LIMITED.value, len(p.sent))
                    for p in postponed
                ]
            )
            async with self.lock:
                for plan in sending:
                    if plan.entry is not None and plan.reason is not None:
                        self.entries[(plan.group.key, plan.receiver)] = plan.entry
                        self.metrics.notifications.labels(plan.receiver, plan.reason.value).inc()
                postponed_ids = {id(p) for p in postponed}
                for plan in plans:
                    if id(plan) in postponed_ids:
                        self.engine.postpone(plan, now)
                    else:
                        self.engine.done(plan, now)
                self.metrics.groups.set(len(self.engine.dispatcher.groups()))
            return len(sending)

    async def maintain(self, retention_days: float) -> None:
        """Forget resolved alerts nobody needs, expired silences and old history."""
        now = self.clock.now()
        await self._read_book(now, full=True)  # also forgets what other replicas collected
        book = self.engine.book
        book.refresh_activity(now)
        # Only a group's owner forgets its alerts, so a resolve another replica still has to
        # send is never collected under it.
        gone = [
            fp
            for fp in book.collectable(now, RESOLVED_RETENTION_S, self.engine.in_groups())
            if (alert := book.get(fp)) is not None
            and all(self.owns(key) for _, key in self.engine.routes_for(alert))
        ]
        for fingerprint in gone:
            book.remove(fingerprint)
        await self.store.delete(gone)
        await self.store.delete_silences(self.engine.silences.purge(now - retention_days * 86400))
        await self.store.purge_history(retention_days)
        firing = len(book.firing(now))
        self.metrics.alerts.labels("firing").set(firing)
        self.metrics.alerts.labels("resolved").set(len(book) - firing)
