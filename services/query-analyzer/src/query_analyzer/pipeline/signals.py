"""Where findings go for alert-engine: the signals topic (a Protocol, with a fake).

``traces``, when given, holds each signal's trace (``FanIn``, in the same order): the
records it was found in. A signal without one (periodic analysis) starts a trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.topics import SIGNALS
from opsmesh.tracing.context import FanIn


class SignalSink(Protocol):
    async def publish(
        self, signals: Sequence[SignalObserved], traces: Sequence[FanIn | None] = ()
    ) -> None: ...


class KafkaSignalSink:
    def __init__(self, producer: EventProducer) -> None:
        self._producer = producer

    async def publish(
        self, signals: Sequence[SignalObserved], traces: Sequence[FanIn | None] = ()
    ) -> None:
        await self._producer.publish_many(
            _outgoing(s, traces[i] if i < len(traces) else None) for i, s in enumerate(signals)
        )


def _outgoing(signal: SignalObserved, trace: FanIn | None) -> Outgoing:
    if trace is None:
        return Outgoing(topic=SIGNALS, key=signal.subject, event=signal)
    return Outgoing(
        topic=SIGNALS, key=signal.subject, event=signal, trace=trace.parent, links=trace.links
    )


class MemorySignalSink:
    """Keeps what was published, in memory: the CLI's sink (it reports; publishing
    signals is the service's job), and the tests'."""

    def __init__(self) -> None:
        self.published: list[SignalObserved] = []
        self.traces: list[FanIn | None] = []  # per published signal

    async def publish(
        self, signals: Sequence[SignalObserved], traces: Sequence[FanIn | None] = ()
    ) -> None:
        self.published.extend(signals)
        self.traces.extend(traces[i] if i < len(traces) else None for i in range(len(signals)))
