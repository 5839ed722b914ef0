"""The engine's I/O shell: one lock around the pure core, and every change made durable
before it is acted on.

Replicas: every replica ingests (signals, the API) into the durable alert book and
routes each alert to its groups through ``opsmesh.alert-groups``, partitioned by group
key. A replica flushes only the groups of the partitions it is assigned, so each group
has one writer; on assignment it rebuilds those groups from PostgreSQL, so a replica
that dies loses nothing. The book, silences and notification log are shared through
PostgreSQL and re-read every ``sync`` for inhibition and the APIs.

Groups hold durable state only: the in-memory book also holds merges on their way to
their owner, so groups are built from rows read back from PostgreSQL (``assigned``,
``on_routed``), never from the book; the notification log only goes forwards
(``NotificationLog.record``). A flush decided again after a crash or a hand-over thus
decides from the same durable state, with the same idempotency key (issue 18).

Locks, and the one rule: **no I/O is awaited while ``lock`` is held.** Every operation
is plan → I/O → apply: it computes under ``lock`` (pure, in memory), releases it, does
its I/O (PostgreSQL, Kafka, Redis), and takes ``lock`` again to apply the outcome,
checking that what it read is still current (``_silences_version``,
``_rules_generation``; the book keeps the newer of two versions of an alert by
``updated_at``). So an outage that makes I/O wait (PostgreSQL paused, Redis gone) never
queues ``POST /api/v2/alerts`` behind it. The locks, in the order they are taken:

1. ``flushing``: one flush, maintenance or rebalance at a time (a rebalance must not hand
   groups over mid-flush); held across that operation's I/O, never by ingest.
2. ``lock``: the in-memory state (book, groups, silences, evaluator, log entries);
   held only for computation.
3. The routing outbox's own lock (``RoutingOutbox``): taken after ``lock`` is released;
   records were queued under ``lock``, so they leave in merge order.

Order for a flush: plan (pure, under ``lock``) → rate limits (Redis) → notification
requests to Kafka (acks=all) → notification log (PostgreSQL) → groups updated in memory
(under ``lock``). A crash after the requests but before the log re-sends the same
idempotency keys, which the notifier delivers once.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge

from alert_engine.core.alerts import AlertSource, StoredAlert
from alert_engine.core.amconfig import EngineConfig
from alert_engine.core.active_alerts import IngestOutcome
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import Engine, ReconfigureOutcome, grouped
from alert_engine.core.evaluation import AlertInstance, Evaluator, SeriesSeen, Transition
from alert_engine.core.flush import FlushPlan, MuteReason
from alert_engine.core.listing import Listing, overlay
from alert_engine.core.rules import Rule, RuleFileError, parse_rules
from alert_engine.core.silences import Silence, Silences
from alert_engine.pipeline.convert import notification, state_changed
from alert_engine.pipeline.route_out import Ingested, RouteOut
from alert_engine.pipeline.routing_outbox import RoutingOutbox, Ticket
from alert_engine.ratelimit import RateLimiter
from alert_engine.storage.alerts import AlertStore, SeriesStore
from alert_engine.storage.active_alerts import ActiveAlertStore
from alert_engine.storage.notification_log import NotificationLog
from alert_engine.storage.rule_groups import RuleGroupStore
from opsmesh.clock import Clock
from opsmesh.events.alerts import AlertsRouted, AlertState, RoutedAlert
from opsmesh.kafka.producer import EventProducer
from opsmesh.logging import get_logger
from opsmesh.tracing.context import new_trace, parse_traceparent

log = get_logger(__name__)

RESOLVED_RETENTION_S = 15 * 60  # resolved alerts stay visible (and re-sendable) this long
SYNC_MARGIN_S = 10.0  # how far back each incremental re-read of the book reaches
LISTING_READ_TIMEOUT_S = 2.0  # the API's read of every alert and silence (``listing``)


class ListingRead(enum.StrEnum):
    """Where an API listing's alerts and silences came from, and why."""

    DURABLE = "durable"  # read from PostgreSQL for the request: the whole deployment, now
    # This replica's copy, as of its last sync (``sync``), because:
    UNAVAILABLE = "postgres_unavailable"  # PostgreSQL did not answer in time
    BUSY = "busy"  # other listings held the one read a replica runs at a time too long


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
        r.traceparent,
    )


def _valid(traceparent: str) -> str:
    """The traceparent normalised, or "" when it is not one (signals' headers are only
    checked once they make a transition)."""
    context = parse_traceparent(traceparent) if traceparent else None
    return context.header() if context is not None else ""


class WriteStep(enum.IntEnum):
    """How far an evaluation's write got: a failed one resumes at the step that failed,
    so no history row is written twice and nothing is skipped.

    The rule state is written last: it is what a restart restores the evaluator from, so
    until every effect of a transition (book row, state event, routing record) is
    durable, a crash must find the rule in its previous state and make the transition
    again on replay. Written first, a crash before routing restored a resolved rule that
    never routed its resolve (nothing to re-evaluate; the alert stayed firing)."""

    BOOK = 1
    EVENTS = 2
    ROUTING = 3
    RULES = 4
    DONE = 5


@dataclass(eq=False, slots=True)
class RuleWrite:
    """What one rule evaluation must make durable and send (planned under the lock)."""

    transitions: list[Transition]
    updates: list[AlertInstance]
    accepted: list[StoredAlert]  # as merged into the book
    traces: list[str]  # per transition: the traceparent its state change continues
    step: WriteStep = WriteStep.BOOK
    ticket: Ticket | None = None  # its routing records, once queued

    def empty(self) -> bool:
        return not (self.transitions or self.updates or self.accepted)


# The durable book's rows of some alerts, by fingerprint, as read after a write.
Durable = Mapping[str, StoredAlert]
RuleSet = tuple[tuple[int, float], dict[str, str], list[Rule]]  # version, sources, parsed


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
        self.listings = Counter(
            "alert_engine_api_listings",
            "Alert and group listings answered, by where their alerts were read",
            ["read"],
            registry=registry,
        )


class EngineState:
    def __init__(
        self,
        *,
        engine: Engine,
        evaluator: Evaluator,
        rule_store: AlertStore,
        series_store: SeriesStore,
        book_store: ActiveAlertStore,
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
        self._outbox = RoutingOutbox(routing_producer or producer)
        self.origin = uuid.uuid4().hex[:16]  # this process, in the rows it writes
        self._route_out = RouteOut(self.origin)
        # Evaluations not yet durable and sent, oldest first (written by the evaluate stage).
        self._unwritten: deque[RuleWrite] = deque()
        self._seen_unwritten: dict[tuple[str, str], SeriesSeen] = {}
        # Bumped on every local change, so an apply can tell its read went stale meanwhile.
        self._silences_version = 0
        self._rules_generation = 0
        self._limiter = limiter
        self.clock = clock
        self._external_url = external_url
        self.metrics = EngineMetrics(registry)
        self.lock = asyncio.Lock()
        self.flushing = asyncio.Lock()  # held for a whole flush; taken before ``lock``
        self.entries: dict[tuple[str, str], LogEntry] = {}
        self.restored = asyncio.Event()
        self.owned: set[int] = set()
        self._synced_to = 0.0
        self.wake = asyncio.Event()  # set when something may be due sooner than the next tick
        # One listing read of PostgreSQL at a time: the read APIs need no token, so many
        # clients asking at once cost PostgreSQL one full read per replica, not one each.
        self._listing_reads = asyncio.Semaphore(1)
        self.listing_timeout_s = LISTING_READ_TIMEOUT_S
        self._listing_read: asyncio.Task[tuple[list[StoredAlert], list[Silence]]] | None = None

    async def restore(self) -> None:
        """Rebuild everything from PostgreSQL (a restart or failover loses nothing)."""
        active = await self._rules.load()
        series = await self._series.load()
        alerts = await self.store.load()
        silences = await self.store.load_silences()
        entries = await self._log.load()
        rules = await self._read_rules()
        async with self.lock:
            now = self.clock.now()
            self.evaluator.restore(active)
            self.evaluator.restore_series(series)
            self._replace_book(alerts, now)
            self.engine.silences = Silences(silences)
            self.entries = entries
            self._apply_rules(rules)
            self.restored.set()
        log.info(
            "state restored",
            alerts=len(self.engine.alerts),
            silences=len(silences),
            log_entries=len(entries),
        )

    # -- input ---------------------------------------------------------------------

    def evaluated(
        self,
        transitions: Sequence[Transition],
        updates: Sequence[AlertInstance],
        seen: Sequence[SeriesSeen] = (),
        causes: Sequence[str] = (),
    ) -> RuleWrite:
        """Rule evaluation results, under ``lock``: merged into the book; ``write_rules``
        makes them durable and routes them after the lock. ``causes``: per transition, the
        traceparent of the signal that caused it ("": time-driven). Its state change
        continues that, else the alert's trace; an alert without one (an absence alert)
        starts a trace, which the book keeps for its routing and notifications."""
        now = self.clock.now()
        stored: list[StoredAlert] = []
        traces: list[str] = []
        for i, t in enumerate(transitions):
            trace = _valid(t.alert.trace) or new_trace().header()
            alert = self._from_rule(t.alert, now, trace)
            if alert is not None:
                stored.append(alert)
            traces.append(_valid(causes[i] if i < len(causes) else "") or trace)
        accepted = self._ingest(stored, now, AlertSource.RULE) if stored else []
        for one in seen:  # the newest per series: a retried batch adds no more of them
            self._seen_unwritten[(one.rule, one.fingerprint)] = one
        return RuleWrite(list(transitions), list(updates), accepted, traces)

    async def write_rules(self, work: RuleWrite) -> None:
        """Outside ``lock`` (one caller, the evaluate stage): make evaluations durable —
        the book, then their state events and routing records, then the rule state and
        history (``WriteStep``), oldest first. One that fails stays queued and resumes
        where it stopped on the next call (the batch's retry), so a PostgreSQL outage
        loses no transition although the evaluator has moved on."""
        if not work.empty():
            self._unwritten.append(work)
        if self._seen_unwritten:
            seen = self._seen_unwritten
            self._seen_unwritten = {}
            try:
                await self._series.save(list(seen.values()))
            except BaseException:
                self._seen_unwritten = {**seen, **self._seen_unwritten}
                raise
        while self._unwritten:
            await self._write(self._unwritten[0])
            self._unwritten.popleft()

    async def _write(self, work: RuleWrite) -> None:
        if work.step is WriteStep.BOOK:
            await self.store.save(work.accepted, origin=self.origin)
            work.step = WriteStep.EVENTS
        if work.step is WriteStep.EVENTS:
            if work.transitions:
                await self._producer.publish_many(
                    state_changed(t, trace)
                    for t, trace in zip(work.transitions, work.traces, strict=True)
                )
            for transition in work.transitions:
                self.metrics.transitions.labels(transition.alert.state.value).inc()
            work.step = WriteStep.ROUTING
        if work.step is WriteStep.ROUTING:
            if work.ticket is None:
                # Routed once durable, as the book holds them now: a later merge (a POST
                # of the same labels) queued since carries no newer version than this.
                async with self.lock:
                    book = self.engine.alerts
                    current = {a.fingerprint: book.get(a.fingerprint) for a in work.accepted}
                    work.ticket = self._outbox.add(
                        self._route_out.records(
                            self.engine, [(a, None, None) for a in current.values() if a]
                        )
                    )
            try:
                await self._outbox.sent(work.ticket)
            except Exception:
                work.ticket = None
                raise
            work.step = WriteStep.RULES
        if work.step is WriteStep.RULES:
            await self._rules.record(work.transitions, work.updates)
            work.step = WriteStep.DONE

    async def post_alerts(self, alerts: Sequence[StoredAlert]) -> tuple[int, int]:
        """Alerts from the API; returns (accepted, dropped by the ingest limit).

        Merged into the book and their records queued for their groups' partitions under
        the lock (no await), so the records of concurrent writers are in merge order; sent
        after the lock and answered once Kafka has them (acks=all). The groups' owners make
        them durable in PostgreSQL (``persist``): no PostgreSQL on this path."""
        async with self.lock:
            now = self.clock.now()
            accepted = self._ingest_api(alerts, now)
            ticket = self._outbox.add(self._route_out.records(self.engine, accepted))
        await self._outbox.sent(ticket)
        return len(accepted), len(alerts) - len(accepted)

    def _ingest_api(self, alerts: Sequence[StoredAlert], now: float) -> list[Ingested]:
        book = self.engine.alerts
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

    async def persist(self, records: Sequence[bytes], batches: Sequence[AlertsRouted]) -> Durable:
        """Make routed alerts durable (book rows and history) before they are applied:
        the consumer commits only after, so a crash replays them. Returns the rows of
        the batches' alerts as committed, which ``on_routed`` applies."""
        return await self.store.persist_routed(
            records, self.origin, [a.fingerprint for b in batches for a in b.alerts]
        )

    def on_routed(self, batches: Sequence[AlertsRouted], durable: Durable) -> None:
        """Apply persisted records to this replica's groups (under ``lock``).

        A group holds only durable versions: each record applies its alert's row as read
        back after ``persist`` (``durable``), never the record itself if the row is newer
        (a replay after a crash or a rebalance: a replayed firing record must not bring
        back an alert whose resolve was already notified), and never the book's version,
        which may be a merge that is not durable yet (see ``rebuild_owned``)."""
        now = self.clock.now()
        book = self.engine.alerts
        for batch in batches:
            for r in batch.alerts:
                if not self.owns(r.group_key):
                    continue  # a stale record from before a rebalance
                row = durable.get(r.fingerprint)
                version = row if row is not None and row.updated_at >= r.updated_at else _stored(r)
                book.restore([version], now)  # keeps a newer merge held here
                self.engine.apply_routed(r.route_id, grouped(version), now, r.group_key)
        self.wake.set()

    async def assigned(self, partitions: set[int]) -> None:
        """Take over groups: re-read the shared state, then rebuild the new partitions'
        groups from the rows just read, never from the in-memory book (``rebuild_owned``):
        the records still on their way are consumed from the partitions, persisted and
        applied (``on_routed``) before any flush can send them."""
        async with self.flushing:
            alerts = await self.store.load()
            entries = await self._log.load()  # only a flush writes entries: ``flushing``
            async with self.lock:
                now = self.clock.now()
                self._replace_book(alerts, now)
                self.entries = entries
                new = partitions - self.owned
                self.owned |= partitions
                self.engine.rebuild_owned(
                    alerts, now, lambda key: self._route_out.partition(key) in new
                )
                groups = len(self.engine.dispatcher.groups())
        log.info("groups assigned", partitions=sorted(partitions), groups=groups)
        self.wake.set()

    async def reconfigure(self, config: EngineConfig) -> ReconfigureOutcome:
        """A reloaded configuration (``pipeline/reload.py``), applied between flushes
        (``flushing``) so no flush plans with one tree and records under another. Groups
        are rebuilt from the rows read here, as a take-over does (``assigned``)."""
        async with self.flushing:
            alerts = await self.store.load()
            async with self.lock:
                outcome = self.engine.reconfigure(config, alerts, self.clock.now(), self.owns)
                self.metrics.groups.set(len(self.engine.dispatcher.groups()))
        self.wake.set()
        return outcome

    async def revoked(self, partitions: set[int]) -> None:
        async with self.flushing, self.lock:
            self.owned -= partitions
            dropped = self.engine.drop_unowned(self.owns)
        log.info("groups revoked", partitions=sorted(partitions), dropped=dropped)

    async def sync(self) -> None:
        """Pick up what other replicas wrote: alerts, silences, rule groups. Read without
        the lock; applied under it unless a local change made the read stale (the book
        keeps the newer version of each alert by itself)."""
        silences_version, rules_generation = self._silences_version, self._rules_generation
        alerts = await self.store.load(self._synced_to - SYNC_MARGIN_S, not_from=self.origin)
        silences = await self.store.load_silences()
        rules = None
        if await self._rule_groups.version() != self._rules_version:
            rules = await self._read_rules()
        async with self.lock:
            self.engine.alerts.restore(alerts, self.clock.now())
            self._synced(alerts)
            if self._silences_version == silences_version:
                self.engine.silences = Silences(silences)
            if rules is not None and self._rules_generation == rules_generation:
                self._apply_rules(rules)

    # -- the API's listings ---------------------------------------------------------

    async def listing(self) -> tuple[Listing, ListingRead]:
        """Every alert of the deployment and its status, for ``GET /api/v2/alerts`` and
        ``/api/v2/alerts/groups``: the book's rows and the silences read from PostgreSQL
        now, so every replica lists the same groups (its own groups hold only its
        partitions'), with this replica's merges not yet durable on top (``overlay``).
        Read without the lock. The wait for the read before it and for this one are each
        bounded by ``listing_timeout_s``; past one, this replica's copy answers
        (``ListingRead``). A read that is late is not cancelled (cancelling a query
        waits on the server too, which a paused PostgreSQL never answers): it finishes
        on its own, holding the one read slot, so later requests do not pile up reads."""
        read = ListingRead.DURABLE
        found: tuple[list[StoredAlert], list[Silence]] = ([], [])
        try:
            async with asyncio.timeout(self.listing_timeout_s):
                await self._listing_reads.acquire()
        except TimeoutError:
            read = ListingRead.BUSY
        else:
            task = asyncio.create_task(self.store.snapshot(self.listing_timeout_s))
            self._listing_read = task
            task.add_done_callback(self._listing_read_done)
            done, _ = await asyncio.wait({task}, timeout=self.listing_timeout_s)
            failure = task.exception() if done else None
            if not done or isinstance(failure, psycopg.OperationalError):
                why = str(failure) if failure else f"no answer in {self.listing_timeout_s} s"
                log.warning("listing from memory: PostgreSQL did not answer", error=why[:200])
                read = ListingRead.UNAVAILABLE
            elif failure is not None:
                raise failure
            else:
                found = task.result()
        async with self.lock:
            now = self.clock.now()
            held = self.engine.alerts.all()
            if read is ListingRead.DURABLE:
                alerts, silences = overlay(found[0], held), Silences(found[1])
            else:
                alerts, silences = held, Silences(self.engine.silences.all())
        self.metrics.listings.labels(read.value).inc()
        # The snapshot is this call's own: nothing else changes it once the lock is left.
        return Listing(self.engine, alerts, silences, now), read

    def _listing_read_done(self, task: asyncio.Task[object]) -> None:
        """The read slot is free again; a late read's outcome is retrieved (logged above
        when it was awaited, or dropped: its request was already answered)."""
        self._listing_reads.release()
        if not task.cancelled():
            task.exception()
        if self._listing_read is task:
            self._listing_read = None

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
        generation = self._rules_generation
        rules = await self._read_rules()
        async with self.lock:
            # Another reload applied since this read began: its read is at least as new
            # (a change it missed is picked up by the next sync, by version).
            if self._rules_generation == generation:
                self._apply_rules(rules)

    async def _read_rules(self) -> RuleSet:
        version = await self._rule_groups.version()
        sources = await self._rule_groups.load()
        parsed: list[Rule] = []
        for name, source in sorted(sources.items()):
            try:
                parsed.extend(parse_rules(source, source=f"api:{name}", aliases=False))
            except RuleFileError as exc:
                # Stored before a check that now refuses it: leaving it out keeps every
                # other group (and the engine's start) working; the log says which.
                log.error("stored rule group skipped", group=name, error=str(exc)[:500])
        return version, sources, parsed

    def _apply_rules(self, rules: RuleSet) -> None:
        """Under ``lock``: a new evaluator over file + API rules, carrying over the state of
        rules that stay."""
        version, sources, parsed = rules
        self._rules_version = version
        self.api_rule_sources = sources
        old = self.evaluator
        evaluator = Evaluator(
            [*self._file_rules, *parsed], forget_after_s=old.default_forget_after_s
        )
        evaluator.restore(old.active())
        evaluator.restore_series(old.seen_series())
        self.evaluator = evaluator
        self._rules_generation += 1

    def _replace_book(self, alerts: Sequence[StoredAlert], now: float) -> None:
        """Under ``lock``: a full re-read of the durable book (kept: what is held here and
        newer, or still on its way to its owner)."""
        self.engine.alerts.replace_all(alerts, now, forgotten_after_s=RESOLVED_RETENTION_S)
        self._synced(alerts)

    def _synced(self, alerts: Sequence[StoredAlert]) -> None:
        # Rows reach the table after their owner consumes them, not in updated_at order:
        # each incremental re-read reaches back a margin before the newest row seen.
        if alerts:
            self._synced_to = max(self._synced_to, *(a.updated_at for a in alerts))

    def _ingest(
        self, alerts: Sequence[StoredAlert], now: float, source: AlertSource
    ) -> list[StoredAlert]:
        accepted = []
        for alert in alerts:
            outcome, merged = self.engine.alerts.put(alert, now)
            self.metrics.alerts_received.labels(source.value, outcome.value).inc()
            if outcome is not IngestOutcome.LIMITED and merged is not None:
                accepted.append(merged)
        return accepted

    def _from_rule(self, alert: AlertInstance, now: float, trace: str) -> StoredAlert | None:
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
            trace=trace,
        )

    # -- silences ------------------------------------------------------------------

    async def set_silence(self, silence: Silence) -> Silence:
        """Planned on the silences as PostgreSQL has them (another replica may have
        written the one updated since this one's last sync), made durable, then applied
        (a write that fails changes nothing)."""
        durable = Silences(await self.store.load_silences())
        stored, changed = durable.set(silence, self.clock.now())
        await self._save_silences(changed)
        self.wake.set()
        return stored

    async def expire_silence(self, silence_id: str) -> Silence:
        """As ``set_silence``: a silence made through another replica a moment ago is
        found (not a 404 until the next sync)."""
        durable = Silences(await self.store.load_silences())
        expired = durable.expire(silence_id, self.clock.now())
        await self._save_silences([expired])
        return expired

    async def _save_silences(self, changed: Sequence[Silence]) -> None:
        await self.store.save_silences(changed)
        async with self.lock:
            for one in changed:
                self.engine.silences.restore(one)
            self._silences_version += 1

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
            # Logged only forwards: an entry another replica logged since this one read
            # the log (a rebalance during this flush) wins, and is decided from next.
            logged = await self._log.record(sending)
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
                        key = (plan.group.key, plan.receiver)
                        self.entries[key] = logged.get(key, plan.entry)
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
        """Forget resolved alerts nobody needs and expired silences (history and the
        notification log are purged by the retention worker, ``pipeline/retention.py``).
        The caller holds ``flushing`` (ownership must not change meanwhile), not ``lock``."""
        alerts = await self.store.load()  # also forgets what other replicas collected
        async with self.lock:
            now = self.clock.now()
            self._replace_book(alerts, now)
            book = self.engine.alerts
            book.refresh_activity(now)
            # Only a group's owner forgets its alerts, so a resolve another replica still
            # has to send is never collected under it.
            gone = [
                (fp, alert.updated_at)
                for fp in book.collectable(now, RESOLVED_RETENTION_S, self.engine.in_groups())
                if (alert := book.get(fp)) is not None
                and all(self.owns(key) for _, key in self.engine.routes_for(alert))
            ]
            for fingerprint, _ in gone:
                book.remove(fingerprint)
            purged = self.engine.silences.purge(now - retention_days * 86400)
            if purged:
                self._silences_version += 1
            firing = len(book.firing(now))
            self.metrics.alerts.labels("firing").set(firing)
            self.metrics.alerts.labels("resolved").set(len(book) - firing)
        # Each row only as it was judged: one updated since (a new POST) stays.
        await self.store.delete(gone)
        await self.store.delete_silences(purged)
