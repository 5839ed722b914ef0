"""The CDN purge consumer: each ``CdnPurgeRequested`` purges each of its providers once.

``handle`` is plan → claim → start, as the deliver stage's: the plan
(``notifier.core.purge_plan``, pure) says what each event is owed; the delivery log says
which (purge key, ``cdn:<provider>``) pairs are already delivered and claims the rest in
Redis (two replicas never purge the same pair at once during a rebalance); the start
spawns one task per pair and returns with ``hold_from``, the lowest offset per partition
whose event is not finished. A task purges (``purge_with_retries``: transient failures
retried with backoff within ``NOTIFIER_RETRY_DEADLINE_S`` behind the provider's circuit
breaker, at most ``NOTIFIER_CDN_CONCURRENCY`` calls per provider at once), dead-letters
a purge that failed (the original record on ``opsmesh.dlq``, ``dlq_reason=delivery_failed``
and ``dlq_error`` = ``cdn:<provider>: <failure>: <why>``) and emits the
``cdn_purge_dead_lettered`` signal, then writes the outcome's row; a crash before the row
replays the event and the purge runs again (purges are idempotent), never a purge that
has its ``delivered`` row.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from notifier.channels.safe_http import Redactor
from notifier.core.breaker import CircuitBreaker
from notifier.core.inflight import InFlight
from notifier.core.purge_attempts import Attempted, PurgeStopped, purge_with_retries
from notifier.core.purge_plan import (
    PURGE_CHANNEL,
    PURGE_RECEIVER,
    DeadLetterCounts,
    Pair,
    PurgeFailure,
    PurgePlan,
    integration,
    plan_purge,
)
from notifier.core.retry import RetryPolicy
from notifier.delivery.log import DeliveryLog, LogWriter, Outcome
from opsmesh.clock import Clock, sleep_until_stopped
from opsmesh.events.cdn import CdnPurgeRequested
from opsmesh.kafka.consumer import BatchResult, Partition, Received, StatelessHandler
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.logging import get_logger
from opsmesh.topics import SIGNALS
from opsmesh_client.cdn.provider import CdnProvider, PurgeRequest

log = get_logger(__name__)


@dataclass(slots=True)
class _Entry:
    received: Received[CdnPurgeRequested]
    open: int


class PurgeStage(StatelessHandler):
    def __init__(
        self,
        *,
        providers: Mapping[str, CdnProvider],
        delivery_log: DeliveryLog,
        producer: EventProducer,
        dead_letters: DeadLetterPublisher,
        clock: Clock,
        registry: CollectorRegistry,
        instance: str,
        retry: RetryPolicy,
        breaker_failures: int = 5,
        breaker_open_s: float = 10.0,
        concurrency: int = 4,
        drain_wait_s: float = 4.0,
        rng: random.Random | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._configured = tuple(self._providers)
        self._log = delivery_log
        self._writer = LogWriter(delivery_log, _no_results)
        self._producer = producer
        self._dead_letters = dead_letters
        self._clock = clock
        self._instance = instance
        self._retry = retry
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._breakers = {
            name: CircuitBreaker(breaker_failures, breaker_open_s) for name in self._providers
        }
        self._slots = {name: asyncio.Semaphore(concurrency) for name in self._providers}
        self._drain_wait_s = drain_wait_s
        self._stopping = asyncio.Event()
        self._shutdown: asyncio.Event | None = None
        self._drained = asyncio.Event()
        self._inflight: InFlight[Partition] = InFlight()
        self._active: set[Pair] = set()
        self._mine: set[Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = DeadLetterCounts()
        # A provider's error may quote its answer: cut as the channels' errors are.
        self._redact = Redactor()
        self._outcomes = Counter(
            "notifier_cdn_purges_total",
            "CDN purges by provider and outcome (delivered, duplicate, failed)",
            ["provider", "outcome"],
            registry=registry,
        )

    @property
    def providers(self) -> tuple[str, ...]:
        return self._configured

    def breakers(self) -> dict[str, dict[str, object]]:
        now = self._clock.monotonic()
        return {name: breaker.snapshot(now) for name, breaker in self._breakers.items()}

    # -- consume side ---------------------------------------------------------------

    async def handle(self, batch: Sequence[Received[CdnPurgeRequested]]) -> BatchResult:
        if not batch:
            if self._shutdown is not None and self._shutdown.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained.wait(), timeout=self._drain_wait_s)
            return BatchResult(hold_from=self._inflight.hold_from())
        plans = [plan_purge(record.event, self._configured) for record in batch]
        wanted = list(dict.fromkeys(pair for plan in plans for pair in plan.pairs))
        # I/O first: if it raises, the kit retries the batch and nothing has started.
        delivered = await self._log.delivered(wanted)
        to_claim = [p for p in wanted if p not in delivered and p not in self._active]
        won = await self._log.claim_many(to_claim, self._instance)
        claims = dict(zip(to_claim, won, strict=True))
        self._mine.update(pair for pair, ok in claims.items() if ok)
        for record, plan in zip(batch, plans, strict=True):
            self._start(record, plan, delivered, claims)
        return BatchResult(hold_from=self._inflight.hold_from())

    def _start(
        self,
        record: Received[CdnPurgeRequested],
        plan: PurgePlan,
        delivered: set[Pair],
        claims: dict[Pair, bool],
    ) -> None:
        self._inflight.add(record.partition, record.offset)
        entry = _Entry(record, open=plan.owed)
        if plan.problem is not None or plan.request is None:
            why = plan.problem or "no purge request"
            self._spawn(self._dead_letter(entry, None, PurgeFailure.DETERMINISTIC, why, 0))
            return
        for provider in plan.unknown:
            why = f"provider {provider!r} is not configured here"
            self._spawn(self._dead_letter(entry, provider, PurgeFailure.NOT_CONFIGURED, why, 0))
        for provider in plan.providers:
            pair = (plan.key, integration(provider))
            if pair in delivered or pair in self._active:
                # Purged before, or the same purge twice in flight: the first one stands.
                self._outcomes.labels(provider, "duplicate").inc()
                self._done(entry)
                continue
            self._active.add(pair)
            self._spawn(self._purge(entry, provider, plan.request, pair, claims.get(pair, False)))

    # -- a provider's purge ---------------------------------------------------------

    async def _purge(
        self, entry: _Entry, provider: str, request: PurgeRequest, pair: Pair, claimed: bool
    ) -> None:
        try:
            while not claimed:
                # Another replica holds the claim: wait for its outcome or its lapse.
                if pair in await self._log.delivered([pair]):
                    self._outcomes.labels(provider, "duplicate").inc()
                    self._active.discard(pair)
                    self._done(entry)
                    return
                claimed = await self._log.claim(*pair, self._instance)
                if claimed:
                    self._mine.add(pair)
                elif await sleep_until_stopped(self._stopping, 1.0):
                    return  # unfinished: replayed after the restart
            async with self._slots[provider]:
                attempted = await purge_with_retries(
                    self._providers[provider],
                    request,
                    policy=self._retry,
                    breaker=self._breakers[provider],
                    monotonic=self._clock.monotonic,
                    sleep=self._sleep,
                    rng=self._rng,
                )
        except PurgeStopped:
            return  # unfinished: its offset stays held and the event is replayed
        await self._finish(entry, provider, pair, attempted)

    async def _sleep(self, seconds: float) -> bool:
        return await sleep_until_stopped(self._stopping, seconds)

    async def _finish(self, entry: _Entry, provider: str, pair: Pair, attempted: Attempted) -> None:
        error = None
        if not attempted.ok:
            failure = attempted.failure or PurgeFailure.DETERMINISTIC
            error = self._redact(f"{failure}: {attempted.error}")
            await self._send_dead_letter(entry, provider, failure, attempted.error or "", attempted)
        row, _ = self._writer.record(
            Outcome(
                key=pair[0],
                integration=pair[1],
                receiver=PURGE_RECEIVER,
                channel=PURGE_CHANNEL,
                outcome="delivered" if attempted.ok else "failed",
                attempts=attempted.attempts,
                status_code=None,
                error=error,
            ),
            None,
        )
        await row
        self._active.discard(pair)
        self._mine.discard(pair)
        self._outcomes.labels(provider, "delivered" if attempted.ok else "failed").inc()
        self._done(entry)

    async def _dead_letter(
        self, entry: _Entry, provider: str | None, failure: PurgeFailure, why: str, attempts: int
    ) -> None:
        await self._send_dead_letter(entry, provider, failure, why, Attempted(False, attempts))
        self._outcomes.labels(provider or "none", "failed").inc()
        self._done(entry)

    async def _send_dead_letter(
        self,
        entry: _Entry,
        provider: str | None,
        failure: PurgeFailure,
        why: str,
        attempted: Attempted,
    ) -> None:
        where = integration(provider) if provider is not None else "cdn"
        error = self._redact(f"{where}: {failure}: {why}")
        log.warning("cdn purge failed; dead-lettering", purge=entry.received.event.id, error=error)
        ack = await self._dead_letters.send(
            entry.received.raw, DeadLetterReason.DELIVERY_FAILED, error
        )
        await ack
        if provider is None:
            return  # an event no provider could act on: no provider's signal
        signal = self._counts.signal(
            provider, failure, attempted.attempts, self._clock.now(), error
        )
        await self._producer.publish(
            Outgoing(SIGNALS, signal.subject, signal, trace=entry.received.trace)
        )

    def _done(self, entry: _Entry) -> None:
        entry.open -= 1
        if entry.open == 0:
            self._inflight.done(entry.received.partition, entry.received.offset)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Unfinished: the offset stays held and the event is replayed after restart.
            log.error("cdn purge bookkeeping failed", error=repr(task.exception()))

    # -- lifecycle ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """The log writer's life: until ``stop``, then let the purges in flight end."""
        self._shutdown = stop
        writer_stop = asyncio.Event()
        writer = asyncio.create_task(
            self._writer.run(writer_stop, give_up=stop), name="notifier:purge-log-writer"
        )
        try:
            await stop.wait()
            self._stopping.set()
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            await self._log.release(list(self._mine & self._active))
        finally:
            self._drained.set()
            writer_stop.set()
            await writer


async def _no_results(_: list[Any]) -> None:
    """Purges publish no result events: the delivery log and the signal are their record."""
