"""The rollup table's upkeep, run on an interval: daily partitions made ahead, expired
days dropped, and admitted series that no replica holds any more forgotten."""

from __future__ import annotations

from dataclasses import dataclass

from metrics_ingest.pipeline.admission import PgSeriesAdmission
from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.pipeline.rollup_stage import TOUCH_INTERVAL_S
from opsmesh.clock import Clock
from opsmesh.db.retention import RetentionMetrics
from opsmesh.logging import get_logger

log = get_logger(__name__)
ROLLUPS_TABLE = "metrics_ingest.rollups"
ADMITTED_TABLE = "metrics_ingest.series_admitted"


@dataclass
class PartitionMaintenance:
    history: RollupHistory
    admission: PgSeriesAdmission | None  # None: no series limits, nothing admitted
    clock: Clock
    metrics: RetentionMetrics
    series_idle_s: float

    def __post_init__(self) -> None:
        # Present at zero before the first run, so a dashboard sees the series.
        self.metrics.dropped_partitions.labels(ROLLUPS_TABLE)
        self.metrics.purged.labels(ADMITTED_TABLE)

    async def run_once(self) -> None:
        now = self.clock.now()
        done = await self.history.maintain(now)
        self.metrics.dropped_partitions.labels(ROLLUPS_TABLE).inc(len(done.drop))
        if self.admission is not None:
            # Touched every TOUCH_INTERVAL_S by their owner while held.
            forgotten = await self.admission.purge(
                now - max(self.series_idle_s, 5 * TOUCH_INTERVAL_S)
            )
            self.metrics.purged.labels(ADMITTED_TABLE).inc(forgotten)
        if done.create or done.drop:
            log.info(
                "rollup partitions maintained",
                created=[str(d) for d in done.create],
                dropped=[str(d) for d in done.drop],
            )
