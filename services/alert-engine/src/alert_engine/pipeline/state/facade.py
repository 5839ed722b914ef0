"""``EngineState``: the engine's I/O shell, and the one place its locks are taken.

Replicas: every replica ingests (signals, the API) into the active alerts and routes each
alert to its groups through ``opsmesh.alert-groups``, partitioned by group key. A replica
flushes only the groups of the partitions it is assigned, so each group has one writer;
on assignment it rebuilds those groups from PostgreSQL, so a replica that dies loses
nothing. The stored alerts, silences and notification log are shared through PostgreSQL
and re-read every ``sync`` for inhibition and the APIs.

The work is done by parts that take no lock: ``Ingest`` (``ingest.py``), ``Ownership``
(``ownership.py``), the flush stages (``flush.py``) and ``Admin`` (``admin.py``), over the
in-memory state the engine lock guards (``Held``, ``held.py``). Each of their methods is
either pure in-memory work, called here under the lock, or I/O, called here without it.

Locks, and the one rule: **no I/O is awaited while ``_lock`` is held.** Every operation
is plan → I/O → apply: it computes under ``_lock``, releases it, does its I/O (PostgreSQL,
Kafka, Redis), and takes ``_lock`` again to apply the outcome, checking that what it read
is still current. So an outage that makes I/O wait (PostgreSQL paused, Redis gone) never
queues ``POST /api/v2/alerts`` behind it. The one await under ``_lock`` is a rule
evaluation's, in the render threads (``evaluate``): computation, bounded by the template
budget, so a rule reload never swaps the evaluator mid-evaluation. The locks, in the
order they are taken (a later one is never held while waiting for an earlier one):

1. ``_flushing``: one flush, maintenance, rebalance, reconfiguration or notification-log
   purge batch at a time (groups must not change owner mid-flush); held across that
   operation's I/O, never by ingest (posted alerts, signals).
2. ``_lock``, the engine lock: the in-memory state (``Held``); held only for computation.
3. The routing outbox's own lock (``RoutingOutbox.sent``): taken only after ``_lock`` is
   released; records were queued under ``_lock``, so they leave in merge order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import EngineConfig
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import Engine, ReconfigureOutcome
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.listing import Listing, overlay
from alert_engine.core.rules import Rule
from alert_engine.core.silences import Silence, Silences
from alert_engine.pipeline.route_out import RouteOut
from alert_engine.pipeline.routing_outbox import RoutingOutbox
from alert_engine.pipeline.state import flush
from alert_engine.pipeline.state.admin import Admin
from alert_engine.pipeline.state.flush import Flush
from alert_engine.pipeline.state.held import Held, LogKey
from alert_engine.pipeline.state.ingest import Ingest, RuleWrite, evaluate
from alert_engine.pipeline.state.listing import ListingRead, ListingReads
from alert_engine.pipeline.state.metrics import EngineMetrics
from alert_engine.pipeline.state.ownership import Ownership
from alert_engine.pipeline.state.stores import Stores
from alert_engine.receiver_limits import ReceiverLimiter
from alert_engine.storage.notification_log import LoggedAt
from opsmesh.alert_path import AlertPathMetrics, Hop
from opsmesh.clock import Clock
from opsmesh.events.alerts import AlertsRouted
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import Received
from opsmesh.kafka.producer import EventProducer
from opsmesh.logging import get_logger
from opsmesh.templating import render_off_loop

log = get_logger(__name__)


class EngineState:
    def __init__(
        self,
        *,
        engine: Engine,
        evaluator: Evaluator,
        stores: Stores,
        producer: EventProducer,
        routing_producer: EventProducer | None = None,
        limiter: ReceiverLimiter,
        clock: Clock,
        registry: CollectorRegistry,
        external_url: str,
        file_rules: Sequence[Rule] = (),
    ) -> None:
        self.clock = clock
        self.stores = stores
        self.metrics = EngineMetrics(registry)
        self.path = AlertPathMetrics(registry)
        # When each owned group last got alerts not yet flushed (the ``flush`` hop's
        # start); cleared when groups change owner, capped against groups dropped unflushed.
        self._due_since: dict[str, float] = {}
        self.origin = uuid.uuid4().hex[:16]  # this process, in the rows it writes
        # Taken here only, in the order the module's docstring gives.
        self._lock = asyncio.Lock()
        self._flushing = asyncio.Lock()
        self.restored = asyncio.Event()
        self.wake = asyncio.Event()  # set when something may be due sooner than the next tick
        self._held = Held(engine, evaluator)
        route_out = RouteOut(self.origin)
        self._ingest = Ingest(
            self._held,
            stores=stores,
            producer=producer,
            # Records to the groups' owners; a producer without linger, as a POST waits on it.
            outbox=RoutingOutbox(routing_producer or producer),
            route_out=route_out,
            metrics=self.metrics,
            origin=self.origin,
            external_url=external_url,
        )
        self._ownership = Ownership(
            self._held, stores=stores, route_out=route_out, origin=self.origin
        )
        self._flush = flush.FlushStages(
            limiter=limiter,
            producer=producer,
            log=stores.log,
            suppressed=stores.active,
            metrics=self.metrics,
            external_url=external_url,
        )
        self._admin = Admin(
            self._held,
            stores=stores,
            file_rules=file_rules,
            metrics=self.metrics,
            origin=self.origin,
        )
        self._listing = ListingReads(stores.active)

    # -- what the APIs and stages read (no await between reading and using it) -------

    @property
    def engine(self) -> Engine:
        return self._held.engine

    @property
    def evaluator(self) -> Evaluator:
        return self._held.evaluator

    @property
    def entries(self) -> dict[LogKey, LogEntry]:
        return self._held.entries

    @property
    def owned(self) -> set[int]:
        return self._held.owned

    @property
    def api_rule_sources(self) -> dict[str, str]:
        return self._admin.api_rule_sources

    @property
    def file_groups(self) -> set[str]:
        return self._admin.file_groups

    @property
    def listing_timeout_s(self) -> float:
        return self._listing.timeout_s

    @listing_timeout_s.setter
    def listing_timeout_s(self, value: float) -> None:
        self._listing.timeout_s = value

    def owns(self, group_key: str) -> bool:
        return self._ownership.owns(group_key)

    # -- start ---------------------------------------------------------------------

    async def restore(self) -> None:
        """Rebuild everything from PostgreSQL (a restart or failover loses nothing)."""
        read = await self._admin.read_all()
        async with self._lock:
            self._admin.restore(read, self.clock.now())
            self.restored.set()
        log.info(
            "state restored",
            alerts=len(self.engine.alerts),
            silences=len(read.silences),
            log_entries=len(read.entries),
        )

    # -- ingest --------------------------------------------------------------------

    async def post_alerts(self, alerts: Sequence[StoredAlert]) -> tuple[int, int]:
        """Alerts from the API; returns (accepted, dropped by the ingest limit).

        Merged and their records queued under the lock (no await), so the records of
        concurrent writers are in merge order; sent after the lock and answered once
        Kafka has them (acks=all). No PostgreSQL on this path (``routed``)."""
        async with self._lock:
            merged_at = self.clock.now()
            ticket, accepted = self._ingest.merge_posted(alerts, merged_at)
        await self._ingest.sent(ticket)
        self.path.observe(Hop.INGEST, self.clock.now() - merged_at)
        return accepted, len(alerts) - accepted

    async def evaluate(self, signals: Sequence[Received[SignalObserved]]) -> RuleWrite:
        """The rules over a batch of signals, in the render threads (templates are user
        code under a budget; the event loop keeps serving meanwhile), merged into the
        active alerts; ``write_rules`` makes the outcome durable."""
        async with self._lock:
            now = self.clock.now()
            found = await render_off_loop(evaluate, self._held.evaluator, signals, now)
            return self._ingest.merge_evaluated(found, now)

    async def write_rules(self, work: RuleWrite) -> None:
        """Make evaluations durable, oldest first: their alert rows, state events, routing
        records, then the rule state and history (``WriteStep``). One that fails stays
        queued and resumes where it stopped on the next call (the batch's retry), so a
        PostgreSQL outage loses no transition although the evaluator has moved on."""
        self._ingest.queue(work)
        await self._ingest.save_seen()
        while (oldest := self._ingest.oldest_unwritten()) is not None:
            await self._ingest.write_durable(oldest)
            if oldest.unrouted():
                async with self._lock:
                    self._ingest.route(oldest)
            await self._ingest.finish(oldest)

    # -- group ownership -----------------------------------------------------------

    async def routed(
        self,
        records: Sequence[bytes],
        batches: Sequence[AlertsRouted],
        sent_at: Sequence[float] = (),
    ) -> None:
        """Routed alerts consumed by this replica: made durable, then applied to its
        groups (the consumer commits after, so a crash replays them). ``sent_at``: the
        records' Kafka timestamps (epoch seconds), the ``persist`` hop's start."""
        durable = await self._ownership.persist(records, batches)
        async with self._lock:
            now = self.clock.now()
            self._ownership.apply_routed(batches, durable, now)
            self._note_due(batches, now)
        for at in sent_at:
            self.path.observe(Hop.PERSIST, now - at)
        self.wake.set()

    _DUE_SINCE_CAP = 200_000

    def _note_due(self, batches: Sequence[AlertsRouted], now: float) -> None:
        if len(self._due_since) > self._DUE_SINCE_CAP:
            self._due_since.clear()  # groups dropped without a flush: lose a few samples
        for batch in batches:
            for r in batch.alerts:
                if self.owns(r.group_key):
                    self._due_since.setdefault(r.group_key, now)

    async def assigned(self, partitions: set[int]) -> None:
        """Take over groups: re-read the shared state, then rebuild the new partitions'
        groups from the rows just read."""
        async with self._flushing:
            read = await self._ownership.read_take_over()
            async with self._lock:
                groups = self._ownership.take_over(partitions, read, self.clock.now())
                self._due_since.clear()
        log.info("groups assigned", partitions=sorted(partitions), groups=groups)
        self.wake.set()

    async def revoked(self, partitions: set[int]) -> None:
        async with self._flushing, self._lock:
            dropped = self._ownership.revoke(partitions)
            self._due_since.clear()
        log.info("groups revoked", partitions=sorted(partitions), dropped=dropped)

    async def reconfigure(self, config: EngineConfig) -> ReconfigureOutcome:
        """A reloaded configuration (``pipeline/reload.py``), applied between flushes so
        no flush plans with one tree and records under another; groups are rebuilt from
        the rows read here, as a take-over does."""
        async with self._flushing:
            alerts = await self.stores.active.load()
            async with self._lock:
                outcome = self._ownership.reconfigure(config, alerts, self.clock.now())
                self.metrics.groups.set(len(self.engine.dispatcher.groups()))
        self.wake.set()
        return outcome

    # -- flushing ------------------------------------------------------------------

    async def flush(self) -> int:
        """Plan every due group, send what needs sending; returns requests produced.
        plan (lock) → rate limit (Redis) → produce (Kafka) → log (PostgreSQL) → apply
        (lock), all under ``flushing`` (``state/flush.py``)."""
        async with self._flushing:
            async with self._lock:
                planned = flush.plan(self._held, self.clock.now(), self.metrics)
            if not planned.plans:
                return 0
            for p in planned.plans:
                since = self._due_since.pop(p.group.key, None)
                if since is not None and p.reason is not None:
                    self.path.observe(Hop.FLUSH, planned.at - since)
            sent = await self._flush.send(planned, produced=self._produced)
            async with self._lock:
                return flush.apply(self._held, sent, self.metrics)

    def next_flush_in(self) -> float | None:
        """Seconds until the earliest owned group is due (0 if one is due now); None
        without groups. Read without awaiting, so consistent without the lock."""
        due = self.engine.dispatcher.next_due()
        return None if due is None else max(0.0, due - self.clock.now())

    def _produced(self, sent: Flush) -> None:
        self.path.observe(Hop.PRODUCE, self.clock.now() - sent.at, len(sent.sending))

    async def maintain(self, retention_days: float) -> None:
        """Forget resolved alerts nobody needs and expired silences (history and the
        notification log are purged by the retention worker, ``pipeline/retention.py``)."""
        async with self._flushing:  # ownership must not change meanwhile
            alerts = await self.stores.active.load()
            async with self._lock:
                collected = self._admin.collect(alerts, self.clock.now(), retention_days, self.owns)
            await self.stores.active.delete(collected.alerts)
            await self.stores.active.delete_silences(collected.silences)

    async def purge_notification_log(
        self, cutoff: float, limit: int, after: LoggedAt | None
    ) -> tuple[int, list[LoggedAt]]:
        """One batch of the notification log's retention (``pipeline/retention.py``):
        returns how many rows went and the expired entries read. Under ``flushing``, so
        no flush plans from an entry being deleted."""
        async with self._flushing:
            found = await self.stores.log.expired(cutoff, limit, after)
            async with self._lock:
                mine = self._admin.purgeable(found, self.owns)
            deleted = await self.stores.log.forget(mine)
            async with self._lock:
                self._admin.forget_entries(found, mine, self.owns)
        return deleted, found

    # -- shared state: sync, rules, silences, listings -------------------------------

    async def sync(self) -> None:
        """Pick up what other replicas wrote: alerts, silences, rule groups."""
        changes = await self._admin.read_changes()
        async with self._lock:
            self._admin.apply_changes(changes, self.clock.now())

    async def put_rule_group(self, name: str, source: str) -> None:
        """Store a validated group (its text parsed to exactly this group) and reload."""
        await self.stores.rule_groups.put(name, source)
        await self._reload_rules()

    async def delete_rule_group(self, name: str) -> bool:
        deleted = await self.stores.rule_groups.delete(name)
        if deleted:
            await self._reload_rules()
        return deleted

    async def _reload_rules(self) -> None:
        generation = self._held.rules_generation
        rules = await self._admin.read_rules()
        async with self._lock:
            self._admin.apply_rules(rules, generation)

    async def set_silence(self, silence: Silence) -> Silence:
        """Planned on the silences as PostgreSQL has them, made durable, then applied (a
        write that fails changes nothing)."""
        durable = await self._admin.durable_silences()
        stored, changed = durable.set(silence, self.clock.now())
        await self._save_silences(changed)
        self.wake.set()
        return stored

    async def expire_silence(self, silence_id: str) -> Silence:
        """As ``set_silence``: a silence made through another replica a moment ago is
        found (not a 404 until the next sync)."""
        durable = await self._admin.durable_silences()
        expired = durable.expire(silence_id, self.clock.now())
        await self._save_silences([expired])
        return expired

    async def _save_silences(self, changed: Sequence[Silence]) -> None:
        await self.stores.active.save_silences(changed)
        async with self._lock:
            self._admin.apply_silences(changed)

    async def listing(self) -> tuple[Listing, ListingRead]:
        """Every alert of the deployment and its status, for ``GET /api/v2/alerts`` and
        ``/api/v2/alerts/groups``: the stored alerts and silences read from PostgreSQL
        now, so every replica lists the same groups (its own groups hold only its
        partitions'), with this replica's merges not yet durable on top (``overlay``);
        this replica's copy when that read is late or busy (``ListingReads``)."""
        (alerts, silences), read = await self._listing.read()
        async with self._lock:
            now = self.clock.now()
            held = self.engine.alerts.all()
            if read is ListingRead.DURABLE:
                listed, muting = overlay(alerts, held), Silences(silences)
            else:
                listed, muting = held, Silences(self.engine.silences.all())
        self.metrics.listings.labels(read.value).inc()
        # The snapshot is this call's own: nothing else changes it once the lock is left.
        return Listing(self.engine, listed, muting, now), read
