"""The consumer handler: samples into windows; closed windows to history and signals."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.pipeline.signals import to_signal
from metrics_ingest.rollup.windows import ClosedWindow, Rollups
from opsmesh.clock import Clock
from opsmesh.events.metrics import MetricSampled
from opsmesh.kafka.consumer import BatchResult, Partition, Received
from opsmesh.kafka.producer import EventProducer


class RollupStage:
    def __init__(
        self,
        *,
        rollups: Rollups,
        history: RollupHistory,
        producer: EventProducer,
        clock: Clock,
        registry: CollectorRegistry,
    ) -> None:
        self._rollups = rollups
        self._history = history
        self._producer = producer
        self._clock = clock
        # Windows closed but not yet durable; kept across a failed attempt so none is lost.
        self._unsaved: list[ClosedWindow] = []
        self._samples = Counter(
            "metrics_ingest_samples", "Samples by outcome", ["outcome"], registry=registry
        )
        self._closed = Counter("metrics_ingest_windows_closed", "Windows closed", registry=registry)
        self._open = Gauge("metrics_ingest_windows_open", "Windows open", registry=registry)

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        for record in batch:
            outcome = self._rollups.add(record.event, record.partition, record.offset)
            self._samples.labels(outcome.value).inc()
        now = self._clock.now()
        self._unsaved.extend(self._rollups.close_due(now))
        if self._unsaved:
            await self._history.store(self._unsaved)
            await self._producer.publish_many(to_signal(w, now) for w in self._unsaved)
            self._closed.inc(len(self._unsaved))
            self._unsaved = []
        self._open.set(self._rollups.open_windows)
        return BatchResult(hold_from=self._rollups.hold_from())

    async def on_assigned(self, partitions: set[Partition]) -> None:
        return None

    async def on_revoked(self, partitions: set[Partition]) -> None:
        self._rollups.forget(partitions)
