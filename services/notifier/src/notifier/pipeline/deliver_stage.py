"""The notifications consumer: hand each request to its destinations' lanes, publish a
result per integration, commit only what has finished.

``handle`` is plan → claim → start, and never waits on a destination. The plan
(``notifier.core.batch_plan``, pure) says what each request is owed; the claim asks the
delivery log which (idempotency key, integration) pairs are already delivered and claims
the rest; the start queues the deliveries on their lanes, dead-letters the rejected and
the unconfigured, and returns at once with ``hold_from``: per partition, the lowest
offset whose request is not finished. The kit commits below that, so a crash replays
unfinished requests and the delivery log skips the integrations that had already
succeeded.

Trace: each delivery runs under the request's trace context (a ``deliver`` span when
spans are exported), so every HTTP attempt sends it as ``traceparent``
(``opsmesh.tracing.http``) and the ``NotificationDelivered`` result continues it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from notifier.channels.base import SendResult
from notifier.core.batch_plan import (
    Delivery,
    NotConfigured,
    NothingToSend,
    Pair,
    Planned,
    Rejected,
    plan_batch,
)
from notifier.core.inflight import InFlight
from notifier.core.retry import FailureKind
from notifier.delivery.log import DeliveryLog, LogWriter, Outcome
from notifier.pipeline.deliver_metrics import DeliverMetrics
from notifier.pipeline.lanes import Destination, Job, Lane, LaneStopped, Sender
from opsmesh.alert_path import AlertPathMetrics, Hop
from opsmesh.clock import Clock, sleep_until_stopped
from opsmesh.events.notifications import (
    DeliveryOutcome,
    NotificationDelivered,
    NotificationRequested,
)
from opsmesh.kafka.consumer import BatchResult, Partition, Received, StatelessHandler
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.topics import DELIVERIES
from opsmesh.tracing.context import TraceContext
from opsmesh.tracing.spans import SpanKind, traced

log = get_logger(__name__)


@dataclass(slots=True)
class _Record:
    received: Received[NotificationRequested]
    open: int


class DeliverStage(StatelessHandler):
    def __init__(
        self,
        *,
        destinations: Callable[[str], Sequence[Destination] | None],
        delivery_log: DeliveryLog,
        producer: EventProducer,
        dead_letters: DeadLetterPublisher,
        sender: Sender,
        clock: Clock,
        registry: CollectorRegistry,
        instance: str,
        max_pending_per_lane: int = 10_000,
        drain_wait_s: float = 4.0,
        missing: Callable[[str], str] | None = None,
    ) -> None:
        """``missing``: why a receiver has no destinations (else: not configured)."""
        self._destinations = destinations
        self._missing = missing
        self._log = delivery_log
        self._writer = LogWriter(delivery_log, self._publish_results)
        self._producer = producer
        self._dead_letters = dead_letters
        self._sender = sender
        self._clock = clock
        self._instance = instance
        self._max_pending = max_pending_per_lane
        self._stopping = sender.stop
        self._drain_wait_s = drain_wait_s
        self._shutdown: asyncio.Event | None = None  # the service's stop, once running
        self._drained = asyncio.Event()
        self._lanes: dict[str, Lane] = {}
        self._retired: list[Lane] = []  # replaced by a reload, finishing their queues
        self._inflight: InFlight[Partition] = InFlight()
        self._active: set[Pair] = set()
        self._mine: set[Pair] = set()  # claims this process holds
        self._tasks: set[asyncio.Task[None]] = set()
        self._housekeeping = Periodic(
            "lane_housekeeping",
            self._keep_house,
            1.0,
            periodic_metrics(registry),
            FirstRun.AFTER_INTERVAL,
        )
        self._metrics = DeliverMetrics(registry)
        self._path = AlertPathMetrics(registry)
        sender.on_attempt = self._metrics.count_attempt

    # -- consume side ---------------------------------------------------------------

    async def handle(self, batch: Sequence[Received[NotificationRequested]]) -> BatchResult:
        if not batch:
            if self._shutdown is not None and self._shutdown.is_set():
                # The consumer's last call before its final commit: let the lanes finish
                # what is mid-send first, so that commit covers it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained.wait(), timeout=self._drain_wait_s)
            return BatchResult(hold_from=self._inflight.hold_from())
        plan = plan_batch(batch, self._destinations, self._active)
        # I/O first, bookkeeping after: if this raises, the kit retries the whole batch
        # and nothing has been started or counted twice.
        delivered = await self._log.delivered(plan.to_look_up)
        to_claim = plan.to_claim(delivered)
        claims = dict(
            zip(to_claim, await self._log.claim_many(to_claim, self._instance), strict=True)
        )
        self._mine.update(pair for pair, won in claims.items() if won)
        claimed_at = self._clock.now()
        for record in batch:
            # From the record's Kafka timestamp: alert-engine handed it to its producer.
            self._path.observe(Hop.CLAIM, claimed_at - record.message.timestamp / 1000)
        self._start(plan.decide(delivered, claims, self._active))
        self._metrics.inflight.set(len(self._inflight))
        return BatchResult(hold_from=self._inflight.hold_from())

    def _start(
        self, decided: Sequence[Planned[Received[NotificationRequested], Destination]]
    ) -> None:
        """Each request's work, as the plan decided it; nothing here waits."""
        started = self._clock.monotonic()
        for planned in decided:
            record = planned.record
            request = record.event
            self._inflight.add(record.partition, record.offset)
            if isinstance(planned, Rejected):
                self._spawn(self._reject(_Record(record, open=1), planned.problem))
            elif isinstance(planned, NotConfigured):
                self._spawn(self._not_configured(_Record(record, open=1)))
            elif isinstance(planned, NothingToSend):
                # e.g. only resolved alerts, to integrations with send_resolved off
                entry = _Record(record, open=1)
                self._spawn(
                    self._finish(entry, self._result(request, "none", DeliveryOutcome.DELIVERED, 0))
                )
            else:
                entry = _Record(record, open=len(planned.deliveries))
                for delivery in planned.deliveries:
                    self._start_delivery(entry, delivery, started)

    def _start_delivery(
        self, entry: _Record, delivery: Delivery[Destination], started: float
    ) -> None:
        request = entry.received.event
        destination = delivery.destination
        if delivery.duplicate:
            # Delivered before, or the same request twice in flight: the first copy's
            # outcome stands.
            self._metrics.outcomes.labels(
                request.receiver, destination.integration, "duplicate"
            ).inc()
            self._spawn(
                self._finish(
                    entry,
                    self._result(request, destination.integration, DeliveryOutcome.DUPLICATE, 0),
                )
            )
            return
        self._active.add(delivery.pair)
        job = Job(delivery.request, destination, delivery.claimed, started, context=entry)
        if not self._lane(destination).submit(job):
            self._spawn(
                self._deliver_result(
                    job,
                    SendResult(
                        ok=False,
                        failure=FailureKind.NETWORK,
                        error=f"lane full: {self._max_pending} requests already queued",
                    ),
                )
            )

    def breakers(self) -> dict[tuple[str, str], dict[str, object]]:
        """This instance's circuit breaker per (receiver, integration), for the API: the
        one of the newest configuration (a reload starts a destination's afresh)."""
        now = self._clock.monotonic()
        newest: dict[tuple[str, str], tuple[int, dict[str, object]]] = {}
        for key, breaker in list(self._sender.breakers.items()):
            destination, _, generation = key.rpartition("#")
            receiver, _, integration = destination.rpartition("/")
            found = newest.get((receiver, integration))
            if found is None or int(generation) >= found[0]:
                newest[(receiver, integration)] = (int(generation), breaker.snapshot(now))
        return {pair: snapshot for pair, (_, snapshot) in newest.items()}

    # -- lanes ----------------------------------------------------------------------

    async def _keep_house(self) -> None:
        for lane in self._lanes.values():
            self._metrics.pending.labels(lane.destination.id).set(lane.pending)
        self._retire_stale()

    def _retire_stale(self) -> None:
        """Lanes whose destination a reload removed or replaced (and that no new job has
        replaced yet) finish their queues and end."""
        for key, lane in list(self._lanes.items()):
            current = self._destinations(lane.destination.receiver) or ()
            if not any(d is lane.destination for d in current):
                lane.retire()
                self._retired.append(lane)
                del self._lanes[key]
                with contextlib.suppress(KeyError):
                    self._metrics.pending.remove(key)
        self._retired = [old for old in self._retired if not old.finished]

    def _lane(self, destination: Destination) -> Lane:
        """The destination's lane. After a reload changed the destination, the old lane
        finishes its queue with the old configuration and ends; jobs for the new one get
        a new lane (and a job planned just before the reload, a lane of its own)."""
        lane = self._lanes.get(destination.id)
        if lane is not None and lane.destination is destination:
            return lane
        fresh = Lane(destination, process=self._process, max_pending=self._max_pending)
        fresh.start(self._stopping)
        self._retired = [old for old in self._retired if not old.finished]
        if lane is None or destination.generation > lane.destination.generation:
            if lane is not None:
                lane.retire()
                self._retired.append(lane)
            self._lanes[destination.id] = fresh
        else:
            # Built from the configuration before the reload: its job (queued next,
            # before the workers first run) still finishes with it, on a lane that ends
            # once that is done.
            fresh.retire()
            self._retired.append(fresh)
        return fresh

    async def _process(self, job: Job) -> None:
        request = job.request
        pair = (request.idempotency_key, job.destination.integration)
        while not job.claimed:
            # Another replica holds the claim (a rebalance moved the partition while it
            # was sending): wait for its outcome or for its claim to lapse.
            if pair in await self._log.delivered([pair]):
                self._active.discard(pair)
                await self._finish(
                    job.context,
                    self._result(
                        request, job.destination.integration, DeliveryOutcome.DUPLICATE, 0
                    ),
                )
                return
            job.claimed = await self._log.claim(*pair, self._instance)
            if job.claimed:
                self._mine.add(pair)
            if not job.claimed and await sleep_until_stopped(self._stopping, 1.0):
                raise LaneStopped
        destination = job.destination
        with traced(
            f"deliver {destination.integration}",
            kind=SpanKind.CONSUMER,
            parent=job.context.received.trace,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": job.context.received.topic,
                "opsmesh.receiver": destination.receiver,
                "opsmesh.integration": destination.integration,
                "opsmesh.idempotency_key": request.idempotency_key,
            },
        ) as trace:
            outcome = await self._sender.send(job)
        await self._deliver_result(job, outcome, trace)

    async def _deliver_result(
        self, job: Job, outcome: SendResult, trace: TraceContext | None = None
    ) -> None:
        """``trace``: the delivery's context, which its result continues (else the
        request's)."""
        request = job.request
        destination = job.destination
        error = None if outcome.ok else f"{outcome.failure}: {outcome.error}"
        if outcome.ok:
            # Claimed (the job started) → the integration answered, retries included.
            self._path.observe(Hop.DELIVERY, self._clock.monotonic() - job.started_at)
        if not outcome.ok:
            log.warning(
                "delivery failed; dead-lettering",
                destination=destination.id,
                key=request.idempotency_key,
                error=error,
            )
            raw = job.context.received.raw
            ack = await self._dead_letters.send(
                raw, DeadLetterReason.DELIVERY_FAILED, f"{destination.integration}: {error}"
            )
            await ack
        delivered = DeliveryOutcome.DELIVERED if outcome.ok else DeliveryOutcome.FAILED
        result = self._result(
            request,
            destination.integration,
            delivered,
            job.attempts,
            status_code=outcome.status_code,
            error=error,
        )
        row, published = self._writer.record(
            Outcome(
                key=request.idempotency_key,
                integration=destination.integration,
                receiver=request.receiver,
                channel=destination.integration,
                outcome=delivered.value,
                attempts=job.attempts,
                status_code=outcome.status_code,
                error=error,
            ),
            Outgoing(
                DELIVERIES,
                result.idempotency_key,
                result,
                trace=trace or job.context.received.trace,
            ),
        )
        # The worker waits for its row before its next send: that bounds the sends a
        # crash can leave unrecorded (and so repeat) to the lane's concurrency.
        await row
        pair = (request.idempotency_key, destination.integration)
        # Only now: until the row is in, a second copy must be treated as in flight.
        self._active.discard(pair)
        self._mine.discard(pair)
        self._spawn(self._after_publish(job, published, outcome.ok))

    async def _after_publish(self, job: Job, published: Awaitable[None], ok: bool) -> None:
        await published
        request = job.request
        if ok:
            self._metrics.latency.labels(request.receiver).observe(
                max(0.0, self._clock.now() - request.requested_at)
            )
        self._metrics.outcomes.labels(
            request.receiver, job.destination.integration, "delivered" if ok else "failed"
        ).inc()
        self._done(job.context)

    async def _not_configured(self, entry: _Record) -> None:
        request = entry.received.event
        why = (
            self._missing(request.receiver)
            if self._missing is not None
            else f"receiver {request.receiver!r} is not configured"
        )
        error = f"{FailureKind.NOT_CONFIGURED}: {why}"
        log.warning("delivery failed; dead-lettering", receiver=request.receiver, error=error)
        await (
            await self._dead_letters.send(
                entry.received.raw, DeadLetterReason.DELIVERY_FAILED, error
            )
        )
        # Not the request's receiver name: any name can arrive, and labels must stay few.
        self._metrics.outcomes.labels("unconfigured", "none", "failed").inc()
        await self._finish(
            entry, self._result(request, "none", DeliveryOutcome.FAILED, 0, error=error)
        )

    async def _reject(self, entry: _Record, problem: str) -> None:
        """A request that cannot be recorded (PostgreSQL refuses its key): dead-lettered
        with the reason, before any I/O that would fail on it forever."""
        request = entry.received.event
        error = f"{FailureKind.UNSTORABLE}: {problem}"
        log.warning("request rejected; dead-lettering", error=error)
        await (
            await self._dead_letters.send(
                entry.received.raw, DeadLetterReason.DELIVERY_FAILED, error
            )
        )
        self._metrics.outcomes.labels("invalid", "none", "failed").inc()
        await self._finish(
            entry, self._result(request, "none", DeliveryOutcome.FAILED, 0, error=error)
        )

    async def _finish(self, entry: _Record, result: NotificationDelivered) -> None:
        await self._producer.publish(
            Outgoing(DELIVERIES, result.idempotency_key, result, trace=entry.received.trace)
        )
        self._done(entry)

    def _done(self, entry: _Record) -> None:
        entry.open -= 1
        if entry.open == 0:
            self._inflight.done(entry.received.partition, entry.received.offset)

    async def _publish_results(self, results: list[Outgoing]) -> None:
        await self._producer.publish_many(results)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Unfinished: the offset stays held and the request is replayed after restart.
            log.error("delivery bookkeeping failed", error=repr(task.exception()))

    # -- lifecycle ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """The lanes' and the log writer's life: until ``stop``, then drain what is mid-send."""
        self._shutdown = stop
        writer_stop = asyncio.Event()
        writer = asyncio.create_task(
            self._writer.run(writer_stop, give_up=stop), name="notifier:log-writer"
        )
        try:
            await self._housekeeping.run(stop)
            self._stopping.set()
            lanes = [*self._lanes.values(), *self._retired]
            await asyncio.gather(*(lane.join() for lane in lanes))
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            # Unfinished pairs are replayed after the restart; free their claims for it.
            await self._log.release(list(self._mine & self._active))
        finally:
            self._drained.set()
            writer_stop.set()
            await writer

    def _result(
        self,
        request: NotificationRequested,
        channel: str,
        outcome: DeliveryOutcome,
        attempts: int,
        *,
        status_code: int | None = None,
        error: str | None = None,
    ) -> NotificationDelivered:
        now = self._clock.now()
        return NotificationDelivered(
            idempotency_key=request.idempotency_key,
            receiver=request.receiver,
            channel=channel,
            outcome=outcome,
            attempts=attempts,
            error=error[:16_000] if error else None,
            status_code=status_code,
            finished_at=now,
            latency_ms=max(0.0, (now - request.requested_at) * 1000),
        )
