"""The contract between ``BatchConsumer`` and a service's handler.

- ``handle`` receives the decoded records of one poll, in partition order (possibly none,
  so time-driven work such as closing windows or flushing groups runs even when input is
  quiet);
- when ``handle`` returns, its effects for those records are durable, except from the
  offsets it names in ``BatchResult.hold_from`` (state still held in memory; every call
  reports the handler's whole hold, not just the batch's);
- after ``handle`` raised, it is called again with the same records, or with a
  contiguous part of them (the consumer bisects a batch that fails deterministically to
  find the records that fail on their own), or with none. So it must be atomic per batch
  or idempotent per offset, and a call that raised must leave nothing that makes a later
  call fail: state kept in memory across a failed call (to retry its I/O) must not hold
  a record's effects that a retry cannot shed, or the failure cannot be pinned on that
  record and the consumer stalls (see ``opsmesh.kafka.consumer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from opsmesh.events.base import Event
from opsmesh.kafka.dlq import DeadLetterReason, RawRecord
from opsmesh.tracing.context import TraceContext, parse_traceparent, traceparent_of

E_contra = TypeVar("E_contra", bound=Event, contravariant=True)
E_co = TypeVar("E_co", bound=Event, covariant=True)
Partition = tuple[str, int]


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
        return raw_record(self.message)

    @property
    def trace(self) -> TraceContext | None:
        """The record's ``traceparent``, parsed (None when absent or invalid): what a
        handler passes on as ``Outgoing.trace`` for the records it produces in response."""
        # Test doubles of a record may carry no headers at all.
        return parse_traceparent(traceparent_of(getattr(self.message, "headers", None)))


def raw_record(message: Any) -> RawRecord:
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
    error_class: str = ""  # the exception's class, when an exception is the reason


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


class ReadProgress(Protocol):
    def lagging(self) -> set[Partition]:
        """Assigned partitions not handed to the handler in full: the broker's last fetch
        answer showed records beyond the last one handed over (or none came yet)."""
        ...


@runtime_checkable
class ProgressAware(Protocol):
    """Optional for handlers: given the consumer's read progress before the first batch.
    A handler that infers "no data" from quiet time (an idle partition's windows closed
    by wall clock) asks it first: while the handler is stalled (its database down) or
    catching up after, the partition is not quiet, the consumer is just not reading it."""

    def watch_progress(self, progress: ReadProgress) -> None: ...


class StatelessHandler:
    """Base for handlers that keep no per-partition state."""

    async def on_assigned(self, partitions: set[Partition]) -> None:
        return None

    async def on_revoked(self, partitions: set[Partition]) -> None:
        return None
