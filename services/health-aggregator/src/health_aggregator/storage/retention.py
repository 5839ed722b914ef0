"""What health-aggregator purges, and why.

- ``health_aggregator.status_history``: one row per status change, for ``GET
  /api/v1/services/{name}`` (the newest ``HEALTH_AGGREGATOR_HISTORY_LIMIT``) and audits.
  Nothing reads it to decide anything (the current state is ``checks``), so rows older
  than the retention simply go.
- ``health_aggregator.checks``: one row per (service, instance, check), the check's
  current state. A check silent for ``HEALTH_AGGREGATOR_DEREGISTER_AFTER_DAYS`` after its
  TTL ran out is deregistered by its owner (``core.checks``): the row is marked
  (``deregistered_at``) rather than deleted, because the fleet view of every replica
  learns changes from changed rows. The mark is kept as long again — far longer than any
  view takes to refresh — and then the row goes. A check that reports again before that
  is simply registered again (the upsert clears the mark).
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from opsmesh.db.retention import PurgeJob, TablePurge, TimeColumn, days


def purge_jobs(
    pool: AsyncConnectionPool, *, history_retention_days: float, deregister_after_days: float
) -> list[PurgeJob]:
    return [
        TablePurge(pool, "health_aggregator.status_history", "at", days(history_retention_days)),
        TablePurge(
            pool,
            "health_aggregator.checks",
            "deregistered_at",
            days(deregister_after_days),
            column_type=TimeColumn.EPOCH_SECONDS,
        ),
    ]
