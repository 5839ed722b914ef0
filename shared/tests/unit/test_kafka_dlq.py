"""Dead letters that cannot fail: capped to fit the producer's limit, producer errors
retried within a bound (an in-memory producer stands in for the broker)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import errors as kafka_errors
from prometheus_client import CollectorRegistry

from opsmesh.kafka.dlq import (
    HEADER_HEADERS_DROPPED,
    HEADER_KEY_TRUNCATED,
    HEADER_VALUE_NULL,
    HEADER_VALUE_SHA256,
    HEADER_VALUE_SIZE,
    HEADER_VALUE_TRUNCATED,
    MAX_RECORD_BYTES,
    PREFIX_BYTES,
    DeadLetterFailed,
    DeadLetterPublisher,
    DeadLetterReason,
    RawRecord,
    fit,
    record_size,
)
from opsmesh_dev.testing.clock import FakeClock

# aiokafka's default max_request_size: the producer refuses anything larger.
PRODUCER_LIMIT = 1_048_576
OURS = [("dlq_reason", b"too_large"), ("dlq_error", b"e" * 2048), ("dlq_source_topic", b"t")]


def raw(
    value: bytes | None,
    key: bytes | None = b"key",
    headers: tuple[tuple[str, bytes], ...] = (("origin", b"app"),),
) -> RawRecord:
    return RawRecord("opsmesh.health", 3, 42, key, value, headers, 1_700_000_000_000)


def header(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    return next((v for k, v in headers if k == name), None)


def test_a_record_that_fits_keeps_its_bytes_and_headers() -> None:
    letter = fit(raw(b'{"ok": 1}'), list(OURS))
    assert letter.key == b"key"
    assert letter.value == b'{"ok": 1}'
    assert letter.headers == [*OURS, ("origin", b"app")]


def test_a_decompressed_three_megabyte_value_becomes_a_prefix_with_size_and_digest() -> None:
    value = b'{"service": "' + b"x" * 3_000_000 + b'"}'
    letter = fit(raw(value), list(OURS))
    assert letter.value == value[:PREFIX_BYTES]
    assert header(letter.headers, HEADER_VALUE_TRUNCATED) == b"true"
    assert header(letter.headers, HEADER_VALUE_SIZE) == str(len(value)).encode()
    assert header(letter.headers, HEADER_VALUE_SHA256) == hashlib.sha256(value).hexdigest().encode()
    assert header(letter.headers, "origin") == b"app", "small original headers stay"
    assert record_size(letter.key, letter.value, letter.headers) <= MAX_RECORD_BYTES


def test_a_value_just_over_the_budget_is_truncated_and_one_just_under_is_kept() -> None:
    overhead = record_size(b"key", b"", [*OURS, ("origin", b"app")])
    under = b"a" * (MAX_RECORD_BYTES - overhead - 16)
    assert fit(raw(under), list(OURS)).value == under
    over = b"a" * (MAX_RECORD_BYTES - overhead + 16)
    assert fit(raw(over), list(OURS)).value == over[:PREFIX_BYTES]


@pytest.mark.parametrize(
    "record",
    [
        raw(b"v" * 5_000_000),
        raw(b"v" * 900_000, key=b"k" * 900_000),
        raw(None, key=b"k" * 3_000_000),
        raw(b"v" * 2_000_000, headers=tuple((f"h{i}", b"x" * 1000) for i in range(3000))),
        raw(b"v" * 10, headers=(("huge", b"x" * 2_000_000),)),
        raw(b"v" * 10, key=None, headers=tuple((f"h{i}", b"") for i in range(200_000))),
    ],
    ids=["value", "key-and-value", "key", "many-headers", "one-huge-header", "countless-headers"],
)
def test_no_record_makes_a_dead_letter_the_producer_would_refuse(record: RawRecord) -> None:
    letter = fit(record, list(OURS))
    assert record_size(letter.key, letter.value, letter.headers) <= MAX_RECORD_BYTES
    assert MAX_RECORD_BYTES < PRODUCER_LIMIT


def test_cut_keys_and_dropped_headers_are_named() -> None:
    letter = fit(raw(b"v", key=b"k" * 3_000_000, headers=(("huge", b"x" * 2_000_000),)), [])
    assert header(letter.headers, HEADER_KEY_TRUNCATED) == b"3000000"
    assert header(letter.headers, HEADER_HEADERS_DROPPED) == b"1"
    assert header(letter.headers, "huge") is None
    assert letter.value == b"v", "the value that fits stays whole"


def test_a_null_record_is_sent_with_an_empty_value_marked_null() -> None:
    letter = fit(raw(None, key=None), [])
    assert letter.key is None
    assert letter.value == b""
    assert header(letter.headers, HEADER_VALUE_NULL) == b"true"


class MemoryBroker:
    """An in-memory stand-in for ``EventProducer.send_raw``: fails the first sends with the
    given errors (raised on send or set on the returned future), then acknowledges."""

    def __init__(self, errors: Sequence[tuple[str, BaseException]] = ()) -> None:
        self.errors = list(errors)
        self.written: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        self.attempts = 0

    async def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        self.attempts += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.errors:
            where, error = self.errors.pop(0)
            if where == "send":
                raise error
            future.set_exception(error)
            return future
        self.written.append((key, value, list(headers)))
        future.set_result(None)
        return future


def publisher(broker: MemoryBroker, bound_s: float = 5.0) -> DeadLetterPublisher:
    return DeadLetterPublisher(
        broker,
        service="tests",
        clock=FakeClock(),
        registry=CollectorRegistry(),
        retry_initial_s=0.001,
        retry_max_s=0.002,
        retry_bound_s=bound_s,
    )


async def test_transient_producer_errors_are_retried_until_written() -> None:
    broker = MemoryBroker(
        [
            ("send", kafka_errors.KafkaTimeoutError()),
            ("future", kafka_errors.RequestTimedOutError()),
            ("future", kafka_errors.NotLeaderForPartitionError()),
        ]
    )
    dead = publisher(broker)
    ack = await dead.send(raw(b"bad"), DeadLetterReason.INVALID_JSON, "not JSON")
    await dead.flush()
    assert ack.done()
    assert broker.attempts == 4
    assert [value for _, value, _ in broker.written] == [b"bad"]
    assert dead.send_failures.labels("transient")._value.get() == 3


async def test_a_broker_that_refuses_the_size_gets_a_stub_naming_the_record() -> None:
    broker = MemoryBroker([("future", kafka_errors.RecordTooLargeError())])
    dead = publisher(broker)
    await dead.send(raw(b"v" * 500_000), DeadLetterReason.HANDLER_FAILED, "boom", error_class="X")
    await dead.flush()
    ((key, value, headers),) = broker.written
    assert key == b"key"
    assert value == b""
    assert header(headers, "dlq_reason") == b"handler_failed"
    assert header(headers, "dlq_error_class") == b"X"
    assert header(headers, HEADER_VALUE_SIZE) == b"500000"
    assert header(headers, "origin") is None, "only the dlq_* headers in a stub"


async def test_past_the_bound_the_dead_letter_fails_loudly_instead_of_being_dropped() -> None:
    broker = MemoryBroker([("future", kafka_errors.KafkaTimeoutError())] * 1000)
    dead = DeadLetterPublisher(
        broker,
        service="tests",
        clock=FakeClock(),  # does not move: the bound is reached by the delays alone
        registry=CollectorRegistry(),
        retry_initial_s=0.001,
        retry_max_s=0.001,
        retry_bound_s=0.0,
    )
    await dead.send(raw(b"bad"), DeadLetterReason.INVALID_JSON, "not JSON")
    with pytest.raises(DeadLetterFailed, match=r"opsmesh.health\[3\]@42"):
        await dead.flush()
    assert broker.written == []


async def test_a_deterministic_producer_error_is_not_retried() -> None:
    broker = MemoryBroker([("future", kafka_errors.TopicAuthorizationFailedError())])
    dead = publisher(broker)
    await dead.send(raw(b"bad"), DeadLetterReason.INVALID_JSON, "not JSON")
    with pytest.raises(DeadLetterFailed):
        await dead.flush()
    assert broker.attempts == 1
