"""Where findings go for alert-engine: the signals topic (a Protocol, with a fake)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.topics import SIGNALS


class SignalSink(Protocol):
    async def publish(self, signals: Sequence[SignalObserved]) -> None: ...


class KafkaSignalSink:
    def __init__(self, producer: EventProducer) -> None:
        self._producer = producer

    async def publish(self, signals: Sequence[SignalObserved]) -> None:
        await self._producer.publish_many(
            Outgoing(topic=SIGNALS, key=s.subject, event=s) for s in signals
        )


class MemorySignalSink:
    """The in-repo fake: keeps what was published."""

    def __init__(self) -> None:
        self.published: list[SignalObserved] = []

    async def publish(self, signals: Sequence[SignalObserved]) -> None:
        self.published.extend(signals)
