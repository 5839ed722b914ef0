"""The aiokafka internals the kit relies on (``opsmesh.kafka.aiokafka_internals``), checked
against the installed aiokafka: each test names the internal, so an upgrade that moves or
changes one fails here, with that name, before it fails in production. The calls that
need a broker are exercised in ``shared/tests/integration/test_aiokafka_internals.py``."""

from __future__ import annotations

import inspect

import aiokafka
import aiokafka.record.default_records as records_py
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer import fetcher, group_coordinator
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from opsmesh.kafka import aiokafka_internals as internals
from opsmesh.kafka import batches

VERSION = aiokafka.__version__
TP = TopicPartition("opsmesh.metrics", 0)


def _must(condition: bool, internal: str, detail: str) -> None:
    if not condition:
        pytest.fail(
            f"aiokafka {VERSION}: {internal} {detail}; adapt opsmesh.kafka.aiokafka_internals"
        )


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def _batch(values: list[bytes], compression_type: int) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression_type,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 24,
    )
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=1_700_000_000_000, key=b"k", value=value, headers=[])
    return bytes(builder.build())


def _read(buffer: bytes) -> list[object]:
    """The records the fetcher's (guarded) ``PartitionRecords`` yields for ``buffer``."""
    batches.install()
    cls = fetcher.PartitionRecords
    return list(cls(TP, MemoryRecords(buffer), [], 0, None, None, True, fetcher.READ_UNCOMMITTED))


def test_the_consumer_reaches_the_group_coordinator_and_its_offset_fetch() -> None:
    start = inspect.getsource(AIOKafkaConsumer.start)
    _must("self._coordinator" in start, "AIOKafkaConsumer._coordinator", "is not set by start()")
    fetch = getattr(group_coordinator.GroupCoordinator, "fetch_committed_offsets", None)
    _must(fetch is not None, "GroupCoordinator.fetch_committed_offsets", "is missing")
    _must(
        _parameters(fetch) == ["self", "partitions"],
        "GroupCoordinator.fetch_committed_offsets",
        f"takes {_parameters(fetch)}, not (self, partitions)",
    )
    _must(
        inspect.iscoroutinefunction(fetch),
        "GroupCoordinator.fetch_committed_offsets",
        "is no longer a coroutine function",
    )


def test_the_consumer_reaches_its_client_and_cluster_metadata() -> None:
    init = inspect.getsource(AIOKafkaConsumer.__init__)
    _must(
        "self._client = AIOKafkaClient(" in init,
        "AIOKafkaConsumer._client",
        "is not the AIOKafkaClient built in __init__",
    )
    fetch = getattr(AIOKafkaClient, "fetch_all_metadata", None)
    _must(fetch is not None, "AIOKafkaClient.fetch_all_metadata", "is missing")
    _must(
        inspect.iscoroutinefunction(fetch),
        "AIOKafkaClient.fetch_all_metadata",
        "is no longer a coroutine function",
    )


def test_the_fetcher_builds_the_guarded_partition_records() -> None:
    _must(
        _parameters(internals.PartitionRecords.__init__)[:3] == ["self", "tp", "records"],
        "aiokafka.consumer.fetcher.PartitionRecords.__init__",
        "no longer takes (tp, records, ...) first",
    )
    batches.install()
    _must(
        fetcher.PartitionRecords is batches.GuardedPartitionRecords,
        "aiokafka.consumer.fetcher.PartitionRecords",
        "was not replaced by the guard",
    )
    source = inspect.getsource(fetcher)
    _must(
        "PartitionRecords(" in source,
        "aiokafka.consumer.fetcher",
        "no longer builds PartitionRecords by its module-level name",
    )


def test_gzip_batches_inflate_through_the_bounded_decode() -> None:
    batches.install()
    _must(
        records_py.gzip_decode is batches.bounded_gzip_decode,
        "aiokafka.record.default_records.gzip_decode",
        "was not replaced",
    )
    try:
        import aiokafka.record._crecords.default_records as records_c  # noqa: PLC0415
    except ImportError:  # pragma: no cover - aiokafka without its C extension
        return
    _must(
        records_c.gzip_decode is batches.bounded_gzip_decode,
        "aiokafka.record._crecords.default_records.gzip_decode",
        "was not replaced",
    )


def test_a_real_gzip_batch_reads_through_the_guard() -> None:
    got = _read(_batch([b"a", b"b", b"c"], compression_type=1))
    _must(
        [(r.offset, r.value) for r in got] == [(0, b"a"), (1, b"b"), (2, b"c")],  # type: ignore[attr-defined]
        "PartitionRecords over a guarded gzip batch",
        f"yielded {got!r}",
    )


def test_a_real_gzip_bomb_becomes_one_stand_in_record() -> None:
    bomb = bytes(batches.MAX_DECOMPRESSED_BATCH_BYTES + 1)
    (stand_in,) = _read(_batch([bomb], compression_type=1))
    why = batches.undecodable(stand_in.headers)  # type: ignore[attr-defined]
    _must(
        why is not None and "BatchTooLarge" in why and stand_in.value is None,  # type: ignore[attr-defined]
        "the stand-in record through aiokafka's _consumer_record",
        f"is {stand_in!r}",
    )


def test_the_producers_record_size_estimate() -> None:
    estimate = getattr(DefaultRecordBatchBuilder, "estimate_size_in_bytes", None)
    _must(estimate is not None, "DefaultRecordBatchBuilder.estimate_size_in_bytes", "is missing")
    small = internals.estimate_record_size(b"k", b"v", [])
    large = internals.estimate_record_size(b"k", b"v" * 1000, [("h", b"x")])
    _must(
        0 < small < large,
        "DefaultRecordBatchBuilder.estimate_size_in_bytes",
        f"estimates {small} and {large}",
    )


def test_a_missing_internal_is_named_with_the_version() -> None:
    class Stripped:
        pass

    with pytest.raises(internals.AiokafkaInternalsChanged, match=f"aiokafka {VERSION}: X.y"):
        internals._reach(Stripped(), "y", "X.y")
