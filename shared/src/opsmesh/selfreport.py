"""The mesh observing itself: each service reports its own dead letters and consumer lag
as signals (``mesh_dead_letters``, ``mesh_consumer_lag`` in ``opsmesh.catalogue``), so
the built-in pipeline rules fire without a Prometheus server scraping the mesh.

Dead letters are the instance's running total per source topic, read from its DLQ
counter; every consumed topic is reported from the start (0), so a rate rule has history
before the first dead letter. Consumer lag is read from the broker, as
``kafka-consumer-groups`` does — the group's committed offset against the partition's end
offset — not from the consumer's own gauge, which only moves when records are fetched and
so stands still while a consumer is stalled. Every replica reports its group's lag; the
readings are the same, and the built-in rule keys lag by group, topic and partition.

A report that fails (the broker away) is logged and skipped; the next one tries again.
Nothing here can stop the service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Counter

from opsmesh.catalogue import MESH_CONSUMER_LAG, MESH_DEAD_LETTERS
from opsmesh.clock import Clock
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.aiokafka_internals import cluster_metadata
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, InFlight, Periodic, PeriodicMetrics, periodic_metrics
from opsmesh.topics import SIGNALS

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumedGroup:
    group: str
    topics: tuple[str, ...]


PartitionLag = Mapping[tuple[str, str, int], int]  # (group, topic, partition) -> records


def dead_letter_signals(
    counter: Counter,
    *,
    service: str,
    instance: str,
    topics: Iterable[str],
    now: float,
) -> list[SignalObserved]:
    """The instance's dead letters so far per source topic (summed over reasons)."""
    totals = dict.fromkeys(topics, 0.0)
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                topic = sample.labels["source_topic"]
                totals[topic] = totals.get(topic, 0.0) + sample.value
    return [
        MESH_DEAD_LETTERS.observe(
            subject=f"{service}/{instance}/{topic}",
            labels={"service": service, "instance": instance, "source_topic": topic},
            value=total,
            observed_at=now,
        )
        for topic, total in sorted(totals.items())
    ]


def lag_signals(lag: PartitionLag, *, service: str, now: float) -> list[SignalObserved]:
    return [
        MESH_CONSUMER_LAG.observe(
            subject=f"{group}/{topic}/{partition}",
            labels={
                "service": service,
                "group": group,
                "topic": topic,
                "partition": str(partition),
            },
            value=float(records),
            observed_at=now,
        )
        for (group, topic, partition), records in sorted(lag.items())
    ]


class LagReader(Protocol):
    async def lag(self, groups: Sequence[ConsumedGroup]) -> PartitionLag: ...


class KafkaLagReader:
    """Committed offsets (admin API) against end offsets, per partition of each group's
    topics; a partition the group never committed counts from its beginning offset."""

    def __init__(self, connection: Mapping[str, Any], timeout_s: float = 10.0) -> None:
        self._connection = dict(connection)
        self._timeout_s = timeout_s

    async def lag(self, groups: Sequence[ConsumedGroup]) -> PartitionLag:
        async with asyncio.timeout(self._timeout_s):
            return await self._read(groups)

    async def _read(self, groups: Sequence[ConsumedGroup]) -> PartitionLag:
        admin = AIOKafkaAdminClient(**self._connection)
        consumer = AIOKafkaConsumer(**self._connection, enable_auto_commit=False)
        # Both are closed whatever fails: a consumer left unclosed when the admin client
        # could not start (the broker down) was reported by asyncio at each self-report.
        try:
            await admin.start()
            await consumer.start()
            cluster = await cluster_metadata(consumer)
            out: dict[tuple[str, str, int], int] = {}
            for group in groups:
                partitions = [
                    TopicPartition(topic, p)
                    for topic in group.topics
                    for p in sorted(cluster.partitions_for_topic(topic) or ())
                ]
                if not partitions:
                    continue
                committed = await admin.list_consumer_group_offsets(group.group)
                ends = await consumer.end_offsets(partitions)
                starts = await consumer.beginning_offsets(partitions)
                for tp in partitions:
                    position = committed.get(tp)
                    known = position is not None and position.offset >= 0
                    offset = position.offset if known and position else starts[tp]
                    out[(group.group, tp.topic, tp.partition)] = max(0, ends[tp] - offset)
            return out
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await admin.close()


class SelfReporter:
    def __init__(
        self,
        *,
        service: str,
        instance: str,
        dead_letters: Callable[[], Counter],
        groups: Callable[[], Sequence[ConsumedGroup]],
        lag: LagReader,
        producer: Callable[[], EventProducer],
        clock: Clock,
        interval_s: float,
        metrics: PeriodicMetrics | None = None,
    ) -> None:
        self._service = service
        self._instance = instance
        self._dead_letters = dead_letters
        self._groups = groups
        self._lag = lag
        self._producer = producer
        self._clock = clock
        self._interval_s = interval_s
        # Without a registry (tests), failed reports are counted in one nobody reads.
        self._metrics = metrics or periodic_metrics(CollectorRegistry())

    async def readings(self) -> list[SignalObserved]:
        now = self._clock.now()
        groups = self._groups()
        signals = dead_letter_signals(
            self._dead_letters(),
            service=self._service,
            instance=self._instance,
            topics={t for g in groups for t in g.topics},
            now=now,
        )
        if groups:
            signals += lag_signals(await self._lag.lag(groups), service=self._service, now=now)
        return signals

    async def report_once(self) -> int:
        signals = await self.readings()
        await self._producer().publish_many(Outgoing(SIGNALS, s.subject, s) for s in signals)
        return len(signals)

    async def run(self, stop: asyncio.Event) -> None:
        """Report every interval until ``stop``; a report in flight at ``stop`` (a broker
        that went away) is abandoned, so shutdown never waits on it. A missed report does
        not stop the service; the next one tries again."""
        await Periodic(
            "self_report",
            self.report_once,
            self._interval_s,
            self._metrics,
            FirstRun.AFTER_INTERVAL,
            InFlight.ABANDON,
        ).run(stop)
