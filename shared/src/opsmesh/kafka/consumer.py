"""Batch consumption: ``getmany`` → msgspec decode → handler → dead letters → commit.

Contract with handlers:
- ``handle`` receives the decoded records of one poll (possibly none, so time-driven work
  such as closing windows or flushing groups runs even when input is quiet);
- when ``handle`` returns, its effects for those records are durable, except from the
  offsets it names in ``BatchResult.hold_from`` (state still held in memory);
- ``handle`` may be called again with the same batch after it raised, so it must be
  atomic per batch or idempotent per offset.

Offsets are committed only after the handler has returned and every dead letter of the
batch is acknowledged, so a crash replays rather than loses. Failures are classified:
bad records → DLQ and go on; a handler exception → back-pressure (retry the same batch
with backoff, nothing committed); a lost partition → its commit is dropped and the new
owner replays from the last commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from opsmesh.events.base import Event
from opsmesh.kafka.codec import decoder_for
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason, RawRecord
from opsmesh.kafka.headers import TraceContext, header_value, parse_traceparent
from opsmesh.logging import get_logger
from opsmesh.topics import Topic

E = TypeVar("E", bound=Event)
E_contra = TypeVar("E_contra", bound=Event, contravariant=True)
E_co = TypeVar("E_co", bound=Event, covariant=True)
Partition = tuple[str, int]

log = get_logger(__name__)


class Received(Generic[E_co]):
    """A decoded event and where it came from. Kept lean: this is built per record on the
    hot path, so the raw record and trace context are derived only when asked for."""

    __slots__ = ("event", "message")

    def __init__(self, event: E_co, message: Any) -> None:
        self.event = event
        self.message = message  # aiokafka's ConsumerRecord

    @property
    def topic(self) -> str:
        return str(self.message.topic)

    @property
    def offset(self) -> int:
        return int(self.message.offset)

    @property
    def partition(self) -> Partition:
        return (self.message.topic, self.message.partition)

    @property
    def raw(self) -> RawRecord:
        return _raw(self.message)

    @property
    def trace(self) -> TraceContext | None:
        return parse_traceparent(header_value(self.message.headers, "traceparent"))


def _raw(message: Any) -> RawRecord:
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple(message.headers or ()),
        timestamp_ms=message.timestamp,
    )


@dataclass(frozen=True, slots=True)
class Rejection:
    raw: RawRecord
    reason: DeadLetterReason
    error: str


@dataclass(slots=True)
class BatchResult:
    rejected: list[Rejection] = field(default_factory=list)
    # Per partition: the lowest offset whose effects are still only in memory.
    hold_from: dict[Partition, int] = field(default_factory=dict)
    # Per partition: a short string committed with the partition's offset (Kafka commit
    # metadata), e.g. an event-time watermark, handed back on assignment to handlers that
    # implement ``CommitMetadataAware``. Absent partitions commit no metadata.
    commit_metadata: dict[Partition, str] = field(default_factory=dict)


class BatchHandler(Protocol[E_contra]):
    async def handle(self, batch: Sequence[Received[E_contra]]) -> BatchResult | None: ...

    async def on_assigned(self, partitions: set[Partition]) -> None: ...

    async def on_revoked(self, partitions: set[Partition]) -> None: ...


@runtime_checkable
class CommitMetadataAware(Protocol):
    """Optional for handlers: receive the metadata last committed with each assigned
    partition's offset (``""`` when none), before the first batch from those partitions."""

    async def on_committed_metadata(self, metadata: dict[Partition, str]) -> None: ...


class StatelessHandler:
    """Base for handlers that keep no per-partition state."""

    async def on_assigned(self, partitions: set[Partition]) -> None:
        return None

    async def on_revoked(self, partitions: set[Partition]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    group_id: str
    topics: tuple[Topic, ...]
    max_records: int = 5_000
    poll_timeout_ms: int = 200
    max_record_bytes: int = 1_048_576
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    commit_interval_s: float = 0.5


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
            "Batches whose handler raised (retried)",
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
    ) -> None:
        self._config = config
        self._event_type = event_type
        self._decoder = decoder_for(event_type)
        self._handler = handler
        self._dead_letters = dead_letters
        # A service with several consumers shares one set (metrics are labelled by topic).
        self._metrics = metrics or ConsumerMetrics(registry)
        self._consumer = AIOKafkaConsumer(
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
        self._lock = asyncio.Lock()
        self._committed: dict[Partition, int] = {}
        self._consumed_to: dict[Partition, int] = {}
        self._hold_from: dict[Partition, int] = {}
        self._commit_metadata: dict[Partition, str] = {}
        self._last_commit = 0.0
        self.started = asyncio.Event()
        self._joined_once = False

    @property
    def kafka(self) -> AIOKafkaConsumer:
        return self._consumer

    @property
    def group_id(self) -> str:
        return self._config.group_id

    async def ready(self) -> None:
        """Readiness: the consumer has started and joined its group."""
        if not self.started.is_set():
            raise RuntimeError("consumer not started")
        if not self._consumer.assignment() and not self._joined_once:
            raise RuntimeError("consumer has not joined its group yet")

    async def run(self, stop: asyncio.Event) -> None:
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
            async with self._lock:
                # One last empty batch: handlers that finish work off the consume loop
                # (and hold offsets for it) report what has finished by now.
                await self._process({}, stop)
                await self._commit()
        finally:
            await self._consumer.stop()

    async def _process(self, batch: dict[TopicPartition, list[Any]], stop: asyncio.Event) -> None:
        started = time.perf_counter()
        good: list[Received[E]] = []
        rejected: list[Rejection] = []
        for tp, messages in batch.items():
            for message in messages:
                self._decode_into(message, good, rejected)
            if messages:
                self._consumed_to[(tp.topic, tp.partition)] = messages[-1].offset + 1
                self._update_lag(tp)
        result = await self._handle_with_retry(good, stop)
        if result is None:  # stopped while the handler kept failing: commit nothing of it
            return
        rejected.extend(result.rejected)
        self._hold_from = dict(result.hold_from)
        # Metadata describes a partition's committed position: the latest report per
        # partition stands until the handler reports it again (batches without records
        # for a partition leave it as it was).
        self._commit_metadata.update(result.commit_metadata)
        for rejection in rejected:
            log.warning(
                "record dead-lettered",
                topic=rejection.raw.topic,
                partition=rejection.raw.partition,
                offset=rejection.raw.offset,
                reason=rejection.reason.value,
                error=rejection.error[:300],
            )
            await self._dead_letters.send(rejection.raw, rejection.reason, rejection.error)
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

    def _decode_into(self, message: Any, good: list[Received[E]], bad: list[Rejection]) -> None:
        value = message.value
        if value is None:
            bad.append(
                Rejection(_raw(message), DeadLetterReason.SCHEMA_VIOLATION, "record has no value")
            )
            return
        if len(value) > self._config.max_record_bytes:
            bad.append(
                Rejection(
                    _raw(message),
                    DeadLetterReason.TOO_LARGE,
                    f"{len(value)} bytes > limit {self._config.max_record_bytes}",
                )
            )
            return
        try:
            event = self._decoder.decode(value)
        except msgspec.ValidationError as exc:
            bad.append(Rejection(_raw(message), DeadLetterReason.SCHEMA_VIOLATION, str(exc)))
            return
        except msgspec.DecodeError as exc:
            bad.append(Rejection(_raw(message), DeadLetterReason.INVALID_JSON, str(exc)))
            return
        if event.schema_version > self._event_type.SCHEMA_VERSION:
            bad.append(
                Rejection(
                    _raw(message),
                    DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION,
                    f"schema_version {event.schema_version} > supported "
                    f"{self._event_type.SCHEMA_VERSION} for {self._event_type.__name__}",
                )
            )
            return
        good.append(Received(event, message))

    async def _handle_with_retry(
        self, good: list[Received[E]], stop: asyncio.Event
    ) -> BatchResult | None:
        delay = self._config.retry_initial_s
        while True:
            try:
                return await self._handler.handle(good) or BatchResult()
            except Exception:
                self._metrics.handler_failures.inc()
                log.exception("handler failed; retrying the same batch", records=len(good))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    delay = min(delay * 2, self._config.retry_max_s)
                    continue
                return None

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        offsets: dict[TopicPartition, int] = {}
        metadata: dict[TopicPartition, tuple[int, str]] = {}
        for partition, consumed in self._consumed_to.items():
            if partition not in assigned:
                continue
            safe = min(consumed, self._hold_from.get(partition, consumed))
            if safe > self._committed.get(partition, -1):
                tp = TopicPartition(*partition)
                offsets[tp] = safe
                if partition in self._commit_metadata:
                    metadata[tp] = (safe, self._commit_metadata[partition])
        if not offsets:
            return
        try:
            if metadata:
                await self._consumer.commit(
                    {tp: metadata.get(tp, (offset, "")) for tp, offset in offsets.items()}
                )
            else:
                await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Lost the partition to a rebalance: its new owner replays from the last commit.
            self._metrics.commits.labels("failed").inc()
            log.warning("offset commit failed", error=str(exc))
            return
        self._metrics.commits.labels("ok").inc()
        for tp, offset in offsets.items():
            self._committed[(tp.topic, tp.partition)] = offset

    def _update_lag(self, tp: TopicPartition) -> None:
        highwater = self._consumer.highwater(tp)
        consumed = self._consumed_to.get((tp.topic, tp.partition))
        if highwater is not None and consumed is not None:
            self._metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - consumed))

    async def _revoked(self, partitions: set[Partition]) -> None:
        async with self._lock:
            await self._commit()
            await self._handler.on_revoked(partitions)
            for partition in partitions:
                self._consumed_to.pop(partition, None)
                self._committed.pop(partition, None)
                self._hold_from.pop(partition, None)
                self._commit_metadata.pop(partition, None)

    async def _assigned(self, partitions: set[Partition]) -> None:
        self._joined_once = True
        if partitions and isinstance(self._handler, CommitMetadataAware):
            await self._handler.on_committed_metadata(await self._fetch_metadata(partitions))
        await self._handler.on_assigned(partitions)

    async def _fetch_metadata(self, partitions: set[Partition]) -> dict[Partition, str]:
        # aiokafka's public ``committed()`` returns the offset only; the coordinator's
        # OffsetFetch answer carries the metadata string committed with it.
        tps = [TopicPartition(*p) for p in partitions]
        answer = await self._consumer._coordinator.fetch_committed_offsets(tps)
        found = {(tp.topic, tp.partition): (meta.metadata or "") for tp, meta in answer.items()}
        return {p: found.get(p, "") for p in partitions}
