"""Batch consumption: ``getmany`` → msgspec decode → handler → dead letters → commit.

The handler's contract is in ``opsmesh.kafka.handler``. Offsets are committed only after
the handler has returned and every dead letter of the batch is acknowledged, so a crash
replays rather than loses. Failures are classified:

- a bad record (not JSON or nested deeper than the decoder follows, not the schema, a
  string holding NUL, too large, a newer schema version, no value) → DLQ with its
  reason, and go on; so is a compressed batch that cannot be inflated, as one letter
  (``opsmesh.kafka.batches``);
- a transient handler failure (``opsmesh.kafka.failures``: connections, timeouts, an
  outage) → back-pressure: the same batch again with exponential backoff, nothing
  committed meanwhile;
- a deterministic handler failure → the batch is bisected until the records that fail on
  their own are found; each goes to the DLQ (``handler_failed``, with the exception's class
  and message) and the rest is handled (``opsmesh.kafka.handling``). A failure with no
  record to blame (the handler's time-driven work) is retried with backoff;
- no progress for ``stall_after_s`` → ``ready()`` raises, naming the last failure, and
  ``opsmesh_consumer_stalled{group}`` is 1; for ``give_up_after_s`` → ``run`` raises
  ``ConsumerStalled``, so the process exits non-zero and is restarted;
- a lost partition → its commit is dropped and the new owner replays from the last commit.

Stopping is bounded (``opsmesh.shutdown``): the last handler call and commit, and the
client's own stop (which leaves the group), each get a timeout, so a stop with the broker
gone still ends in time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from opsmesh.clock import Clock, SystemClock
from opsmesh.events.base import Event
from opsmesh.kafka import batches
from opsmesh.kafka.aiokafka_internals import GroupConsumer
from opsmesh.kafka.batches import undecodable
from opsmesh.kafka.clients import ConsumerClient
from opsmesh.kafka.codec import decoder_for
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason
from opsmesh.kafka.failures import FailureClass
from opsmesh.kafka.handler import (
    BatchHandler,
    BatchResult,
    CommitMetadataAware,
    Partition,
    ProgressAware,
    Received,
    Rejection,
    StatelessHandler,
    raw_record,
)
from opsmesh.kafka.handling import ConsumerStalled, HandlerRunner
from opsmesh.kafka.offsets import OffsetTracker
from opsmesh.kafka.stall import StallWatch
from opsmesh.logging import get_logger
from opsmesh.shutdown import finish_within
from opsmesh.topics import Topic

__all__ = [
    "BatchConsumer",
    "BatchHandler",
    "BatchResult",
    "CommitMetadataAware",
    "ConsumerConfig",
    "ConsumerMetrics",
    "ConsumerStalled",
    "Partition",
    "ProgressAware",
    "Received",
    "Rejection",
    "StatelessHandler",
]

E = TypeVar("E", bound=Event)

log = get_logger(__name__)

# JSON can only carry a NUL character escaped. An int needle is a memchr (~25 ns for a
# 200-byte record) where the bytes one is a substring search (~300 ns, a third of the
# decode), and most records hold no backslash at all.
_BACKSLASH = ord("\\")
_NUL_ESCAPE = b"\\u0000"
_NUL_PROBLEM = "a string holds a NUL character (\\u0000), which PostgreSQL cannot store"


def holds_nul(value: bytes) -> bool:
    """Whether any string (or key) of the JSON document ``value`` contains NUL; for
    documents the typed decoder accepted (so they parse)."""
    stack: list[Any] = [msgspec.json.decode(value)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    group_id: str
    topics: tuple[Topic, ...]
    max_records: int = 5_000
    poll_timeout_ms: int = 200
    max_record_bytes: int = 1_048_576
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    # No progress this long: readiness red. This long: the worker gives up (the process
    # exits non-zero). ``Runtime`` sets both from ``CommonSettings``.
    stall_after_s: float = 30.0
    give_up_after_s: float = 300.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    commit_interval_s: float = 0.5
    # Bounds on stopping: the last handler call with its commit, then the client's stop.
    final_commit_timeout_s: float = 3.0
    close_timeout_s: float = 1.5


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "opsmesh_consumer_records", "Records consumed", ["topic", "outcome"], registry=registry
        )
        self.batch_seconds = Histogram(
            "opsmesh_consumer_batch_seconds", "Time to handle one batch", registry=registry
        )
        self.handler_failures = Counter(
            "opsmesh_consumer_handler_failures",
            "Handler calls that raised, by failure class (transient: retried; deterministic:"
            " the batch is bisected, or retried when it has no records)",
            ["group", "failure_class"],
            registry=registry,
        )
        self.stalled = Gauge(
            "opsmesh_consumer_stalled",
            "1 while the consumer has made no progress for its stall_after_s",
            ["group"],
            registry=registry,
        )
        self.commits = Counter(
            "opsmesh_consumer_commits", "Offset commits", ["outcome"], registry=registry
        )
        self.lag = Gauge(
            "opsmesh_consumer_lag",
            "Records behind the partition's high watermark",
            ["topic", "partition"],
            registry=registry,
        )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer[Any]) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner._revoked({(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._owner._assigned({(tp.topic, tp.partition) for tp in assigned})


class BatchConsumer(Generic[E]):
    def __init__(
        self,
        *,
        connection: dict[str, Any],
        config: ConsumerConfig,
        event_type: type[E],
        handler: BatchHandler[E],
        dead_letters: DeadLetterPublisher,
        registry: CollectorRegistry,
        client_id: str,
        metrics: ConsumerMetrics | None = None,
        clock: Clock | None = None,
        client: ConsumerClient | None = None,
    ) -> None:
        """``client``: the Kafka consumer to drive (default: aiokafka's, from
        ``connection``; tests pass ``opsmesh_dev.testing.kafka.InMemoryConsumer``)."""
        self._config = config
        self._event_type = event_type
        self._decoder = decoder_for(event_type)
        self._handler = handler
        self._dead_letters = dead_letters
        self._clock = clock or SystemClock()
        # A service with several consumers shares one set (metrics are labelled by topic).
        self._metrics = metrics or ConsumerMetrics(registry)
        batches.install()  # undecodable compressed batches become dead letters
        self._consumer: ConsumerClient = client or GroupConsumer(
            **connection,
            group_id=config.group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_interval_ms=config.max_poll_interval_ms,
            max_partition_fetch_bytes=1_048_576,
            fetch_max_bytes=16 * 1_048_576,
        )
        self._watch = StallWatch(config.stall_after_s, config.give_up_after_s)
        self._runner = HandlerRunner(
            handler,
            watch=self._watch,
            clock=self._clock,
            retry_initial_s=config.retry_initial_s,
            retry_max_s=config.retry_max_s,
            observe=self._count_failure,
        )
        self._metrics.stalled.labels(config.group_id).set_function(
            lambda: 1.0 if self.stalled() is not None else 0.0
        )
        self._lock = asyncio.Lock()
        self._offsets = OffsetTracker()
        self._last_commit = 0.0
        self.started = asyncio.Event()
        self._joined_once = False
        if isinstance(handler, ProgressAware):
            handler.watch_progress(self)

    @property
    def kafka(self) -> ConsumerClient:
        return self._consumer

    @property
    def group_id(self) -> str:
        return self._config.group_id

    def stalled(self) -> str | None:
        """Why the consumer is stalled (no progress for ``stall_after_s``), or None."""
        return self._watch.stalled(self._clock.monotonic())

    async def ready(self) -> None:
        """Readiness: the consumer has started, joined its group and is not stalled."""
        if not self.started.is_set():
            raise RuntimeError("consumer not started")
        if not self._consumer.assignment() and not self._joined_once:
            raise RuntimeError("consumer has not joined its group yet")
        reason = self.stalled()
        if reason is not None:
            raise RuntimeError(f"consumer stalled: {reason}")

    def lagging(self) -> set[Partition]:
        """Assigned partitions with records on the broker (as of its last fetch answer)
        beyond the last one handed to the handler, or whose end is not known yet
        (``ReadProgress``). The end is the last stable offset (``read_committed``); a
        partition whose last records are a transaction's markers stays lagging until its
        next record (none of opsmesh's producers is transactional)."""
        behind: set[Partition] = set()
        for tp in self._consumer.assignment():
            partition = (tp.topic, tp.partition)
            end = self._consumer.last_stable_offset(tp)
            if end is None or end < 0:
                end = self._consumer.highwater(tp)
            handed = self._offsets.handed_to(partition)
            if end is None or handed is None or handed < end:
                behind.add(partition)
        return behind

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; raises ``ConsumerStalled`` when the handler made no
        progress for ``give_up_after_s``."""
        await self._consumer.start()
        try:
            self._consumer.subscribe(
                topics=[t.name for t in self._config.topics], listener=_Rebalance(self)
            )
            self.started.set()
            while not stop.is_set():
                batch = await self._consumer.getmany(
                    timeout_ms=self._config.poll_timeout_ms, max_records=self._config.max_records
                )
                async with self._lock:
                    await self._process(batch, stop)
            await finish_within(
                self._finish(stop), self._config.final_commit_timeout_s, "last batch and commit"
            )
        finally:
            await finish_within(
                self._consumer.stop(), self._config.close_timeout_s, "consumer stop"
            )

    async def _finish(self, stop: asyncio.Event) -> None:
        async with self._lock:
            # One last empty batch: handlers that finish work off the consume loop
            # (and hold offsets for it) report what has finished by now.
            await self._process({}, stop)
            await self._commit()

    async def _process(self, batch: dict[TopicPartition, list[Any]], stop: asyncio.Event) -> None:
        started = time.perf_counter()
        good: list[Received[E]] = []
        rejected: list[Rejection] = []
        consumed: dict[Partition, int] = {}
        firsts: dict[Partition, int] = {}
        for tp, messages in batch.items():
            for message in messages:
                self._decode_into(message, good, rejected)
            if messages:
                consumed[(tp.topic, tp.partition)] = messages[-1].offset + 1
                firsts[(tp.topic, tp.partition)] = messages[0].offset
        self._offsets.handing(consumed, firsts)
        handled = await self._runner.run(good, stop)
        if handled is None:  # stopped while the handler kept failing: commit nothing of it
            return
        result = handled.result
        self._offsets.handled(consumed, result.hold_from, result.commit_metadata)
        for tp in batch:
            self._update_lag(tp)
        rejected.extend(result.rejected)
        rejected.extend(handled.poison)
        for rejection in rejected:
            log.warning(
                "record dead-lettered",
                topic=rejection.raw.topic,
                partition=rejection.raw.partition,
                offset=rejection.raw.offset,
                reason=rejection.reason.value,
                error=rejection.error[:300],
            )
            await self._dead_letters.send(
                rejection.raw, rejection.reason, rejection.error, error_class=rejection.error_class
            )
        await self._dead_letters.flush()
        totals: dict[str, int] = {}
        for tp, messages in batch.items():
            totals[tp.topic] = totals.get(tp.topic, 0) + len(messages)
        for rejection in rejected:
            totals[rejection.raw.topic] -= 1
            self._metrics.records.labels(rejection.raw.topic, "dead_lettered").inc()
        for topic, ok in totals.items():
            self._metrics.records.labels(topic, "ok").inc(ok)
        # A commit is a broker round trip that stalls the loop; batching them (every
        # commit_interval_s, and always on stop and revocation) keeps "commit only what is
        # durable" while a replay after a crash re-reads at most that interval.
        if time.monotonic() - self._last_commit >= self._config.commit_interval_s:
            await self._commit()
        if batch:
            self._metrics.batch_seconds.observe(time.perf_counter() - started)

    def _count_failure(self, failure_class: FailureClass, exc: BaseException, records: int) -> None:
        self._metrics.handler_failures.labels(self._config.group_id, failure_class.value).inc()

    def _decode_into(self, message: Any, good: list[Received[E]], bad: list[Rejection]) -> None:
        value = message.value
        if value is None:
            why = undecodable(message.headers)
            if why is not None:
                bad.append(Rejection(raw_record(message), DeadLetterReason.UNDECODABLE_BATCH, why))
                return
            bad.append(
                Rejection(
                    raw_record(message), DeadLetterReason.SCHEMA_VIOLATION, "record has no value"
                )
            )
            return
        if len(value) > self._config.max_record_bytes:
            bad.append(
                Rejection(
                    raw_record(message),
                    DeadLetterReason.TOO_LARGE,
                    f"{len(value)} bytes > limit {self._config.max_record_bytes}",
                )
            )
            return
        try:
            event = self._decoder.decode(value)
        except msgspec.ValidationError as exc:
            bad.append(Rejection(raw_record(message), DeadLetterReason.SCHEMA_VIOLATION, str(exc)))
            return
        except msgspec.DecodeError as exc:
            bad.append(Rejection(raw_record(message), DeadLetterReason.INVALID_JSON, str(exc)))
            return
        except RecursionError:  # nesting deeper than the decoder follows (free-form fields)
            bad.append(
                Rejection(raw_record(message), DeadLetterReason.INVALID_JSON, "nested too deep")
            )
            return
        if _BACKSLASH in value and _NUL_ESCAPE in value and holds_nul(value):
            bad.append(
                Rejection(raw_record(message), DeadLetterReason.SCHEMA_VIOLATION, _NUL_PROBLEM)
            )
            return
        if event.schema_version > self._event_type.SCHEMA_VERSION:
            bad.append(
                Rejection(
                    raw_record(message),
                    DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION,
                    f"schema_version {event.schema_version} > supported "
                    f"{self._event_type.SCHEMA_VERSION} for {self._event_type.__name__}",
                )
            )
            return
        good.append(Received(event, message))

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        plan = self._offsets.plan(assigned)
        if not plan:
            return
        try:
            if plan.metadata:
                await self._consumer.commit(
                    {TopicPartition(*p): om for p, om in plan.with_metadata().items()}
                )
            else:
                await self._consumer.commit(
                    {TopicPartition(*p): offset for p, offset in plan.offsets.items()}
                )
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Lost the partition to a rebalance: its new owner replays from the last commit.
            self._metrics.commits.labels("failed").inc()
            log.warning("offset commit failed", error=str(exc))
            return
        self._metrics.commits.labels("ok").inc()
        self._offsets.committed(plan)

    def _update_lag(self, tp: TopicPartition) -> None:
        lag = self._offsets.lag((tp.topic, tp.partition), self._consumer.highwater(tp))
        if lag is not None:
            self._metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)

    async def _revoked(self, partitions: set[Partition]) -> None:
        async with self._lock:
            await self._commit()
            await self._handler.on_revoked(partitions)
            self._offsets.revoke(partitions)

    async def _assigned(self, partitions: set[Partition]) -> None:
        self._joined_once = True
        if partitions and isinstance(self._handler, CommitMetadataAware):
            await self._handler.on_committed_metadata(await self._fetch_metadata(partitions))
        await self._handler.on_assigned(partitions)

    async def _fetch_metadata(self, partitions: set[Partition]) -> dict[Partition, str]:
        answer = await self._consumer.committed_metadata(TopicPartition(*p) for p in partitions)
        found = {(tp.topic, tp.partition): metadata for tp, metadata in answer.items()}
        return {p: found.get(p, "") for p in partitions}
