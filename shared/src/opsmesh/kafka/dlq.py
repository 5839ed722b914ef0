"""Dead letters: bad input goes to ``opsmesh.dlq`` with its reason and origin; nothing stops.

The DLQ record keeps the original key, value and headers byte for byte when they fit (so
``opsmesh dlq replay`` can send it back) and adds ``dlq_*`` headers saying why and where
from. Dead-lettering cannot fail on the record itself:

- A record can be far larger than the producer may send: a gzip-compressed record of a
  few kilobytes on the wire decompresses to megabytes in the consumer. A dead letter that
  would not fit ``max_record_bytes`` keeps a prefix of the value (``PREFIX_BYTES``) with
  ``dlq_value_truncated``, ``dlq_value_size`` and ``dlq_value_sha256`` of the original;
  an oversized key keeps its first ``KEY_BYTES`` (``dlq_key_truncated``: its size) and
  original headers beyond ``HEADER_BYTES`` are dropped (``dlq_headers_dropped``: how
  many). Truncated dead letters are not replayable.
- A record without key and value (a null record) is sent with an empty value and
  ``dlq_value_null``.
- Producer errors: a transient one (broker unreachable, timeouts, no leader) resends with
  backoff for up to ``retry_bound_s``; a broker refusing the size (a DLQ topic configured
  smaller than the producer's limit) resends a stub with no original value or headers.
  Past the bound the send fails with ``DeadLetterFailed``: the consumer then commits
  nothing and its worker fails, so the batch replays after a restart instead of being lost.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError
from prometheus_client import CollectorRegistry, Counter

from opsmesh.clock import Clock
from opsmesh.kafka.aiokafka_internals import estimate_record_size
from opsmesh.kafka.failures import FailureClass, classify, describe
from opsmesh.logging import get_logger
from opsmesh.topics import DLQ

log = get_logger(__name__)


class DeadLetterReason(enum.StrEnum):
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    # The handler raised a deterministic error on this record alone (the consumer isolated
    # it by bisecting its batch); ``dlq_error_class`` names the exception.
    HANDLER_FAILED = "handler_failed"
    TOO_LARGE = "too_large"
    DELIVERY_FAILED = "delivery_failed"
    # A compressed batch that could not be inflated (a codec without its library, a
    # corrupt stream, or past MAX_DECOMPRESSED_BATCH_BYTES): one letter for the whole
    # batch, at its last offset, without the original bytes (``opsmesh.kafka.batches``).
    UNDECODABLE_BATCH = "undecodable_batch"


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


class DeadLetterFailed(RuntimeError):
    """A dead letter could not be written within the bound."""


HEADER_REASON = "dlq_reason"
HEADER_ERROR = "dlq_error"
HEADER_ERROR_CLASS = "dlq_error_class"
HEADER_TOPIC = "dlq_source_topic"
HEADER_PARTITION = "dlq_source_partition"
HEADER_OFFSET = "dlq_source_offset"
HEADER_SERVICE = "dlq_service"
HEADER_FAILED_AT = "dlq_failed_at"
HEADER_VALUE_TRUNCATED = "dlq_value_truncated"
HEADER_VALUE_SIZE = "dlq_value_size"
HEADER_VALUE_SHA256 = "dlq_value_sha256"
HEADER_VALUE_NULL = "dlq_value_null"
HEADER_KEY_TRUNCATED = "dlq_key_truncated"
HEADER_HEADERS_DROPPED = "dlq_headers_dropped"

_MAX_ERROR_BYTES = 2048
# Below the producer's max_request_size (1 MiB) and the broker's message.max.bytes
# (1 MiB + 12), with room for the request's own framing.
MAX_RECORD_BYTES = 1_000_000
PREFIX_BYTES = 64 * 1024
KEY_BYTES = 16 * 1024
HEADER_BYTES = 64 * 1024
_SIZE_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Letter:
    """What is actually produced for one dead letter."""

    key: bytes | None
    value: bytes
    headers: Headers


def record_size(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> int:
    """The producer's own estimate of one record's size in a batch."""
    return estimate_record_size(key, value, list(headers))


def fit(record: RawRecord, ours: Headers, max_record_bytes: int = MAX_RECORD_BYTES) -> Letter:
    """The dead letter of ``record`` with ``ours`` (the ``dlq_*`` headers), within
    ``max_record_bytes``: the original bytes when they fit, else capped (module doc)."""
    headers = list(ours)
    key = record.key
    value = record.value
    if value is None:
        headers.append((HEADER_VALUE_NULL, b"true"))
        value = b""
    original = list(record.headers)
    if record_size(key, value, headers + original) <= max_record_bytes:
        return Letter(key, value, headers + original)
    kept: Headers = []
    used = 0
    for name, content in original:
        used += len(name.encode()) + len(content) + 4
        if used > HEADER_BYTES:
            break
        kept.append((name, content))
    if len(kept) < len(original):
        headers.append((HEADER_HEADERS_DROPPED, str(len(original) - len(kept)).encode()))
    if key is not None and len(key) > KEY_BYTES:
        headers.append((HEADER_KEY_TRUNCATED, str(len(key)).encode()))
        key = key[:KEY_BYTES]
    if record_size(key, value, headers + kept) > max_record_bytes:
        headers += [
            (HEADER_VALUE_TRUNCATED, b"true"),
            (HEADER_VALUE_SIZE, str(len(value)).encode()),
            (HEADER_VALUE_SHA256, hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[:PREFIX_BYTES]
    return Letter(key, value, headers + kept)


def _stub(letter: Letter, original: RawRecord) -> Letter:
    """The last resort when the broker refuses even a capped letter: origin and reason."""
    ours = [(k, v) for k, v in letter.headers if k.startswith("dlq_")]
    if original.value is not None and not any(k == HEADER_VALUE_TRUNCATED for k, _ in ours):
        ours += [
            (HEADER_VALUE_TRUNCATED, b"true"),
            (HEADER_VALUE_SIZE, str(len(original.value)).encode()),
            (HEADER_VALUE_SHA256, hashlib.sha256(original.value).hexdigest().encode()),
        ]
    key = letter.key[:256] if letter.key is not None else None
    return Letter(key, b"", ours)


class RawSender(Protocol):
    """The producer's raw send (``EventProducer.send_raw``): queue one record; the future
    completes when the broker acknowledges it."""

    async def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        partition: int | None = None,
    ) -> asyncio.Future[Any]: ...


class DeadLetterPublisher:
    def __init__(
        self,
        producer: RawSender,
        *,
        service: str,
        clock: Clock,
        registry: CollectorRegistry,
        max_record_bytes: int = MAX_RECORD_BYTES,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        retry_bound_s: float = 60.0,
    ) -> None:
        self._producer = producer
        self._service = service
        self._clock = clock
        self._max_record_bytes = max_record_bytes
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._retry_bound_s = retry_bound_s
        self._pending: list[asyncio.Future[Any]] = []
        self.records_total = Counter(
            "opsmesh_dlq_records",
            "Records sent to the dead-letter topic",
            ["source_topic", "reason"],
            registry=registry,
        )
        self.send_failures = Counter(
            "opsmesh_dlq_send_failures",
            "Failed attempts to write a dead letter (retried, or stubbed when too large)",
            ["failure_class"],
            registry=registry,
        )
        self.truncated = Counter(
            "opsmesh_dlq_truncated",
            "Dead letters whose value was cut to a prefix to fit the producer's limit",
            registry=registry,
        )

    async def send(
        self, record: RawRecord, reason: DeadLetterReason, error: str, *, error_class: str = ""
    ) -> asyncio.Future[Any]:
        """Send; the returned future completes when the broker acknowledges this record
        (for callers that must not share ``flush`` with the consume loop), or fails with
        ``DeadLetterFailed``."""
        ours: Headers = [
            (HEADER_REASON, reason.value.encode()),
            (HEADER_ERROR, error.encode("utf-8", "replace")[:_MAX_ERROR_BYTES]),
            (HEADER_TOPIC, record.topic.encode()),
            (HEADER_PARTITION, str(record.partition).encode()),
            (HEADER_OFFSET, str(record.offset).encode()),
            (HEADER_SERVICE, self._service.encode()),
            (HEADER_FAILED_AT, repr(self._clock.now()).encode()),
        ]
        if error_class:
            ours.append((HEADER_ERROR_CLASS, error_class.encode()))
        letter = fit(record, ours, self._max_record_bytes)
        if any(k == HEADER_VALUE_TRUNCATED for k, _ in letter.headers):
            self.truncated.inc()
        # Queued now, in order; only the retries of a failed send run in their own task.
        try:
            first: asyncio.Future[Any] | BaseException = await self._send(letter)
        except Exception as exc:
            first = exc
        future = asyncio.ensure_future(self._acknowledged(letter, record, first))
        self._pending.append(future)
        self.records_total.labels(record.topic, reason.value).inc()
        return future

    async def flush(self) -> None:
        """Wait until every dead letter sent so far is acknowledged (before committing)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def _send(self, letter: Letter) -> asyncio.Future[Any]:
        return await self._producer.send_raw(DLQ.name, letter.key, letter.value, letter.headers)

    async def _acknowledged(
        self, letter: Letter, record: RawRecord, sent: asyncio.Future[Any] | BaseException
    ) -> Any:
        deadline = self._clock.monotonic() + self._retry_bound_s
        delay = self._retry_initial_s
        stubbed = False
        while True:
            try:
                if isinstance(sent, BaseException):
                    raise sent
                return await sent
            except Exception as exc:
                if isinstance(exc, _SIZE_ERRORS) and not stubbed:
                    self.send_failures.labels("too_large").inc()
                    log.warning("dead letter refused as too large; sending a stub", error=str(exc))
                    letter, stubbed = _stub(letter, record), True
                elif (
                    classify(exc) is FailureClass.TRANSIENT
                    and self._clock.monotonic() + delay < deadline
                ):
                    self.send_failures.labels(FailureClass.TRANSIENT.value).inc()
                    log.warning("dead letter not written; retrying", error=describe(exc, 300))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry_max_s)
                else:
                    self.send_failures.labels(classify(exc).value).inc()
                    raise DeadLetterFailed(
                        f"dead letter of {record.topic}[{record.partition}]@{record.offset} "
                        f"not written: {describe(exc, 500)}"
                    ) from exc
            try:
                sent = await self._send(letter)
            except Exception as exc:
                sent = exc
