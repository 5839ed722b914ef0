"""The Kafka clients the kit drives, as Protocols: the part of aiokafka's consumer and
producer that ``BatchConsumer`` and ``EventProducer`` use, and nothing more.

Two implementations satisfy them: aiokafka's own (``GroupConsumer`` is aiokafka's
consumer with the committed-metadata read of ``opsmesh.kafka.aiokafka_internals``; the
producer is ``AIOKafkaProducer`` as is), built by default, and the in-memory twins of
``opsmesh_dev.testing.kafka``, passed as ``client=`` so a stage runs the kit's real consume,
commit and produce logic without a broker. ``shared/tests/integration/
test_kafka_twin_contract.py`` runs one suite against both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition

__all__ = ["BatchBuilder", "ConsumerClient", "ProducerClient"]


class ConsumerClient(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def subscribe(self, *, topics: list[str], listener: ConsumerRebalanceListener) -> None: ...

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        """Records per partition (``ConsumerRecord``s); rebalances run their listener here."""
        ...

    def assignment(self) -> set[TopicPartition]: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...

    def last_stable_offset(self, partition: TopicPartition) -> int | None: ...

    async def commit(self, offsets: Mapping[TopicPartition, Any]) -> None:
        """``offsets`` maps to an offset, or to ``(offset, metadata)`` for every partition."""
        ...

    async def committed_metadata(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, str]:
        """The metadata committed with each partition's offset, where one was committed."""
        ...


class BatchBuilder(Protocol):
    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Any:
        """None when the batch is full."""
        ...

    def close(self) -> None: ...


class ProducerClusterView(Protocol):
    def partitions_for_topic(self, topic: str) -> set[int] | None: ...


class ProducerNetworkClient(Protocol):
    @property
    def cluster(self) -> ProducerClusterView: ...

    async def fetch_all_metadata(self) -> Any: ...


class ProducerClient(Protocol):
    @property
    def client(self) -> ProducerNetworkClient: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def partitions_for(self, topic: str) -> set[int]: ...

    def create_batch(self) -> Any: ...

    async def send_batch(
        self, batch: Any, topic: str, *, partition: int
    ) -> asyncio.Future[Any]: ...

    async def send(
        self,
        topic: str,
        *,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...
