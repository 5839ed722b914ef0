"""Dead letters: bad input goes to ``opsmesh.dlq`` with its reason and origin; nothing stops.

The DLQ record keeps the original key, value and headers byte for byte (so
``opsmesh dlq replay`` can send it back) and adds ``dlq_*`` headers saying why and where from.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from opsmesh.clock import Clock
from opsmesh.kafka.producer import EventProducer
from opsmesh.topics import DLQ


class DeadLetterReason(enum.StrEnum):
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    REJECTED_BY_HANDLER = "rejected_by_handler"
    TOO_LARGE = "too_large"
    DELIVERY_FAILED = "delivery_failed"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A consumed record as it arrived, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


HEADER_REASON = "dlq_reason"
HEADER_ERROR = "dlq_error"
HEADER_TOPIC = "dlq_source_topic"
HEADER_PARTITION = "dlq_source_partition"
HEADER_OFFSET = "dlq_source_offset"
HEADER_SERVICE = "dlq_service"
HEADER_FAILED_AT = "dlq_failed_at"
_MAX_ERROR_BYTES = 2048


class DeadLetterPublisher:
    def __init__(
        self, producer: EventProducer, *, service: str, clock: Clock, registry: CollectorRegistry
    ) -> None:
        self._producer = producer
        self._service = service
        self._clock = clock
        self._pending: list[asyncio.Future[Any]] = []
        self.records_total = Counter(
            "opsmesh_dlq_records",
            "Records sent to the dead-letter topic",
            ["source_topic", "reason"],
            registry=registry,
        )

    async def send(
        self, record: RawRecord, reason: DeadLetterReason, error: str
    ) -> asyncio.Future[Any]:
        """Send; the returned future completes when the broker acknowledges this record
        (for callers that must not share ``flush`` with the consume loop)."""
        headers = [
            *record.headers,
            (HEADER_REASON, reason.value.encode()),
            (HEADER_ERROR, error.encode("utf-8", "replace")[:_MAX_ERROR_BYTES]),
            (HEADER_TOPIC, record.topic.encode()),
            (HEADER_PARTITION, str(record.partition).encode()),
            (HEADER_OFFSET, str(record.offset).encode()),
            (HEADER_SERVICE, self._service.encode()),
            (HEADER_FAILED_AT, repr(self._clock.now()).encode()),
        ]
        future = await self._producer.send_raw(DLQ.name, record.key, record.value, headers)
        self._pending.append(future)
        self.records_total.labels(record.topic, reason.value).inc()
        return future

    async def flush(self) -> None:
        """Wait until every dead letter sent so far is acknowledged (before committing)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
