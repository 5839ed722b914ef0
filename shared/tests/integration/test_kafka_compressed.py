"""Compressed batches against a real broker: one the consumer cannot inflate (a codec
without its library here, or a bomb past ``MAX_DECOMPRESSED_BATCH_BYTES``) becomes one
dead letter, and the consumer commits past it and goes on. Before, aiokafka raised out of
``getmany`` at that offset on every poll and after every restart.

snappy, lz4 and zstd need ``cramjam``, which is not installed; the zstd batch is made by
hand (a zstd frame of raw blocks is valid zstd, which the broker checks) through
aiokafka's own batch builder, told that it has the codec for the time of the send.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator

import aiokafka.codec as codecs
import aiokafka.record._crecords.default_records as crecords
import pytest
from aiokafka import AIOKafkaProducer
from tests.fixtures.kafka import eventually, header, run_consumer

from opsmesh.events import MetricSampled
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.batches import MAX_DECOMPRESSED_BATCH_BYTES, bounded_gzip_decode
from opsmesh.kafka.codec import encode
from opsmesh.topics import Topic

from .test_kafka_failures import Store, _committed_total, _dead_letters, kit, sample

__all__ = ["kit"]  # the fixture, shared with the failure tests

pytestmark = pytest.mark.integration


def raw_zstd(data: bytes) -> bytes:
    """A valid zstd frame holding ``data`` in raw (stored) blocks."""
    frame = bytearray(struct.pack("<I", 0xFD2FB528))
    frame.append(0xA0)  # single segment, 4-byte content size, no checksum
    frame += struct.pack("<I", len(data))
    blocks = [data[i : i + 65536] for i in range(0, len(data), 65536)] or [b""]
    for index, block in enumerate(blocks):
        last = 1 if index == len(blocks) - 1 else 0
        frame += (last | (len(block) << 3)).to_bytes(3, "little")  # raw block
        frame += block
    return bytes(frame)


@contextlib.contextmanager
def zstd_producing() -> Iterator[None]:
    """aiokafka's builder makes zstd batches (raw frames) for the time of a send; the
    consumer refuses zstd (``opsmesh.kafka.batches``) whether or not cramjam is installed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codecs, "has_zstd", lambda: True)
        patch.setitem(AIOKafkaProducer._COMPRESSORS, "zstd", (lambda: True, 4))
        patch.setattr(crecords, "zstd_encode", raw_zstd)
        yield


async def _send_batch(bootstrap: str, topic: Topic, values: list[bytes], **options) -> list[int]:
    """``values`` as one batch (sent together, flushed once); their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=100, **options)
    await producer.start()
    try:
        futures = [await producer.send(topic.name, key=b"one-key", value=v) for v in values]
        await producer.flush()
        return [(await f).offset for f in futures]
    finally:
        await producer.stop()


async def _consume_past(
    connection: dict, topic: Topic, group: str, producer: EventProducer, *, store: Store, total: int
) -> list:
    stop, task, consumer = await run_consumer(connection, topic, group, store, producer)
    try:
        dead = await eventually(
            lambda: _dead_letters(connection, topic.name),
            until=lambda records: len(records) == 1,
            what="the batch's dead letter",
        )
        await eventually(
            lambda: _committed_total(connection, group),
            until=lambda committed: committed == total,
            what="every offset committed",
        )
        await consumer.ready()
    finally:
        stop.set()
        await task
    return dead


async def test_a_batch_in_a_refused_codec_is_one_dead_letter(kit, infra, unique):
    producer, topic, connection = kit
    values = [encode(sample(v)) for v in (1.0, 2.0, 3.0)]
    with zstd_producing():
        offsets = await _send_batch(infra.kafka_bootstrap, topic, values, compression_type="zstd")
    assert offsets == [0, 1, 2], "one batch, on one partition"
    await producer.publish(Outgoing(topic, "one-key", sample(7)))
    store = Store()

    (letter,) = await _consume_past(
        connection, topic, f"g.{unique}", producer, store=store, total=4
    )

    assert header(letter, "dlq_reason") == b"undecodable_batch"
    assert header(letter, "dlq_source_offset") == b"2", "the batch's last offset"
    error = (header(letter, "dlq_error") or b"").decode()
    assert "batch from offset 0" in error
    assert "UnsupportedCodecError" in error
    assert "zstd batches are not accepted" in error
    assert store.stored == [7.0], "the record after the batch is handled"


async def test_a_gzip_bomb_past_the_batch_bound_is_one_dead_letter(kit, infra, unique):
    producer, topic, connection = kit
    bomb = b'{"pad": "' + b"0" * MAX_DECOMPRESSED_BATCH_BYTES + b'"}'
    await _send_batch(
        infra.kafka_bootstrap,
        topic,
        [bomb],
        compression_type="gzip",
        max_request_size=2 * MAX_DECOMPRESSED_BATCH_BYTES,  # checked before compression
    )
    await producer.publish(Outgoing(topic, "one-key", sample(8)))
    store = Store()

    (letter,) = await _consume_past(
        connection, topic, f"g.{unique}", producer, store=store, total=2
    )

    assert header(letter, "dlq_reason") == b"undecodable_batch"
    error = (header(letter, "dlq_error") or b"").decode()
    assert f"inflates past {MAX_DECOMPRESSED_BATCH_BYTES} bytes" in error
    assert store.stored == [8.0]


def test_bounded_gzip_decode_reads_every_member_and_refuses_past_the_bound() -> None:
    import gzip  # noqa: PLC0415

    two = gzip.compress(b"a" * 10) + gzip.compress(b"b" * 5)
    assert bounded_gzip_decode(memoryview(two)) == b"a" * 10 + b"b" * 5
    with pytest.raises(ValueError, match="inflates past"):
        bounded_gzip_decode(gzip.compress(b"\0" * (MAX_DECOMPRESSED_BATCH_BYTES + 1)))
    assert MetricSampled  # the events of the batches above


async def test_a_good_compressed_batch_is_handled_as_before(kit, infra, unique):
    producer, topic, connection = kit
    values = [encode(sample(v)) for v in (1.0, 2.0, 3.0)]
    offsets = await _send_batch(infra.kafka_bootstrap, topic, values, compression_type="gzip")
    assert offsets == [0, 1, 2]
    store = Store()
    group = f"g.{unique}"
    stop, task, _ = await run_consumer(connection, topic, group, store, producer)
    try:
        await eventually(
            lambda: _committed_total(connection, group),
            until=lambda committed: committed == 3,
            what="the batch committed",
        )
    finally:
        stop.set()
        await task
    assert store.stored == [1.0, 2.0, 3.0]
    assert await _dead_letters(connection, topic.name) == []
