"""query-analyzer's ``StatsStage`` alone, without Kafka or PostgreSQL: CPU per event.

The events of ``bench.query_analyzer`` are decoded once and handed to the real stage in
batches of 5,000 (as the kit's consumer gives them), against an in-memory pool whose
statements do nothing. Process time, best of several runs: on a shared host it moves
far less than the wall-clock figures, so it tells a change in the stage's own work from
a busier machine.

    uv run python -m bench.query_analyzer_stage [events] [bind-parameter share] [runs]
"""

from __future__ import annotations

import asyncio
import sys
import time
from types import SimpleNamespace, TracebackType
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from bench.query_analyzer import make_events
from opsmesh.clock import SystemClock
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka import Received
from query_analyzer.core.traces import TraceBuffer
from query_analyzer.pipeline.signals import MemorySignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.stats import QueryStats

BATCH = 5_000
PARTITIONS = 4


class _Nothing:
    """A connection, transaction and cursor in one, whose statements return no rows."""

    async def __aenter__(self) -> _Nothing:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def connection(self) -> _Nothing:
        return self

    def transaction(self) -> _Nothing:
        return self

    def cursor(self) -> _Nothing:
        return self

    async def execute(self, *args: Any) -> None:
        return None

    async def executemany(self, *args: Any) -> None:
        return None

    async def fetchall(self) -> list[Any]:
        return []


def stage_cpu_per_event(events: int, bind_share: float, runs: int) -> float:
    """Best process time per event (seconds) over ``runs``, each with a fresh stage."""
    decoder = msgspec.json.Decoder(SlowQueryObserved)
    records = [
        Received(
            decoder.decode(value),
            SimpleNamespace(topic="slow", partition=i % PARTITIONS, offset=i, headers=()),
        )
        for i, value in enumerate(make_events(events, bind_share))
    ]
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    best = float("inf")
    for _ in range(runs):
        pool: Any = _Nothing()
        stage = StatsStage(
            pool=pool,
            stats=QueryStats(pool),
            findings=FindingStore(pool),
            signals=MemorySignalSink(),
            consumer="bench",
            registry=CollectorRegistry(),
            clock=SystemClock(),
            traces=TraceBuffer(settle_s=0.0),  # as bench.query_analyzer: read every batch
        )

        async def consume(stage: StatsStage = stage) -> None:
            for batch in batches:
                await stage.handle(batch)

        started = time.process_time()
        asyncio.run(consume())
        best = min(best, time.process_time() - started)
    return best / events


def main() -> int:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    share = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    per_event = stage_cpu_per_event(events, share, runs)
    print(f"query-analyzer StatsStage, no infrastructure: {events:,} events, {share:.0%} bind")
    print(f"  best of {runs}: {per_event * 1e6:.2f} us CPU per event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
