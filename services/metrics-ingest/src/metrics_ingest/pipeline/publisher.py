"""The producer port the HTTP ingest and the rollup stage publish through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from opsmesh.kafka.producer import Outgoing


class Publisher(Protocol):
    """``EventProducer.publish_batched``: the records of one request or batch published
    together; returns once the broker acknowledged all."""

    async def publish_batched(self, items: Sequence[Outgoing]) -> None: ...
