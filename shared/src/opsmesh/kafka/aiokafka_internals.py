"""Every use of aiokafka beyond its public API, in one place.

aiokafka (pinned in ``uv.lock``) offers no public way to do four things the kit needs;
each is reached here and nowhere else, and ``shared/tests/unit/test_aiokafka_internals.py``
(structure, and a real compressed batch through the guard) plus
``shared/tests/integration/test_aiokafka_internals.py`` (the calls against a real broker)
fail with a message naming the internal when an upgrade moves or changes one:

- **committed metadata**: the public ``committed()`` returns an offset only; the group
  coordinator's OffsetFetch answer (``consumer._coordinator.fetch_committed_offsets``)
  also carries the metadata string committed with it (``CommitMetadataAware``);
- **cluster metadata**: the list of a topic's partitions without an admin client or a
  subscription (``consumer._client.fetch_all_metadata``), for reading whole topics;
- **the record batch guard** (``opsmesh.kafka.batches``): the fetcher's per-partition
  record iterator ``aiokafka.consumer.fetcher.PartitionRecords`` is replaced by a subclass,
  and the ``gzip_decode`` both record implementations (Python and C) call is bounded;
- **record size estimate**: ``DefaultRecordBatchBuilder.estimate_size_in_bytes``, what
  the producer itself checks against ``max_request_size`` (``opsmesh.kafka.dlq``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiokafka
import aiokafka.consumer.fetcher as _fetcher
import aiokafka.record.default_records as _records_py
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder

__all__ = [
    "AiokafkaInternalsChanged",
    "GroupConsumer",
    "PartitionRecords",
    "cluster_metadata",
    "committed_metadata",
    "estimate_record_size",
    "replace_gzip_decode",
    "replace_partition_records",
]

# The base class the batch guard extends (``opsmesh.kafka.batches``).
PartitionRecords: Any = _fetcher.PartitionRecords


class AiokafkaInternalsChanged(RuntimeError):
    """An aiokafka internal the kit relies on is gone or changed shape."""

    def __init__(self, internal: str, detail: str) -> None:
        super().__init__(
            f"aiokafka {aiokafka.__version__}: {internal} {detail}; opsmesh.kafka."
            "aiokafka_internals must be adapted to this aiokafka version"
        )


def _reach(owner: Any, name: str, internal: str) -> Any:
    try:
        return getattr(owner, name)
    except AttributeError:
        raise AiokafkaInternalsChanged(internal, "is missing") from None


async def committed_metadata(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, str]:
    """The metadata committed with each partition's offset (absent: none committed) of a
    started consumer's group."""
    coordinator = _reach(consumer, "_coordinator", "AIOKafkaConsumer._coordinator")
    fetch = _reach(
        coordinator, "fetch_committed_offsets", "GroupCoordinator.fetch_committed_offsets"
    )
    answer = await fetch(list(partitions))
    return {tp: (meta.metadata or "") for tp, meta in answer.items()}


class GroupConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """aiokafka's consumer with the committed-metadata read the kit's ``ConsumerClient``
    names (``opsmesh.kafka.clients``)."""

    async def committed_metadata(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, str]:
        return await committed_metadata(self, list(partitions))


async def cluster_metadata(consumer: AIOKafkaConsumer) -> Any:
    """The cluster's metadata (``ClusterMetadata``: ``partitions_for_topic`` …) as a
    started consumer's client fetches it."""
    client = _reach(consumer, "_client", "AIOKafkaConsumer._client")
    fetch = _reach(client, "fetch_all_metadata", "AIOKafkaClient.fetch_all_metadata")
    return await fetch()


def replace_partition_records(cls: type) -> None:
    """Make the fetcher build ``cls`` (a ``PartitionRecords`` subclass) per partition."""
    _reach(_fetcher, "PartitionRecords", "aiokafka.consumer.fetcher.PartitionRecords")
    _fetcher.PartitionRecords = cls


def _record_modules() -> Iterable[Any]:
    yield _records_py
    try:
        import aiokafka.record._crecords.default_records as _records_c  # noqa: PLC0415
    except ImportError:  # pragma: no cover - aiokafka without its C extension
        return
    yield _records_c


def replace_gzip_decode(decode: Callable[[Any], bytes]) -> None:
    """Make both record implementations inflate gzip batches with ``decode``."""
    replace_decoder("gzip", decode)


def replace_decoder(codec: str, decode: Callable[[Any], bytes]) -> None:
    """Make both record implementations decode ``codec`` (gzip, snappy, lz4, zstd) batches
    with ``decode``."""
    for module in _record_modules():
        name = f"{codec}_decode"
        _reach(module, name, f"{module.__name__}.{name}")
        setattr(module, name, decode)


def estimate_record_size(key: bytes | None, value: bytes | None, headers: list[Any]) -> int:
    """A record's size in a batch of its own, as the producer estimates it."""
    estimate = _reach(
        DefaultRecordBatchBuilder,
        "estimate_size_in_bytes",
        "DefaultRecordBatchBuilder.estimate_size_in_bytes",
    )
    return int(estimate(key, value, headers))
