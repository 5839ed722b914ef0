"""What health-aggregator purges, and why.

- ``health_aggregator.status_history``: one row per status change, for ``GET
  /api/v1/services/{name}`` (the newest ``HEALTH_AGGREGATOR_HISTORY_LIMIT``) and audits.
  Nothing reads it to decide anything (the current state is ``checks``), so rows older
  than the retention simply go.

``health_aggregator.checks`` is not purged: it holds one row per (service, instance,
check) — it grows with instances, not with traffic — and a row is the check's current
state, which the fleet view and the owner's TTL expiry act on (``docs/services.md``).
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from opsmesh.db.retention import PurgeJob, TablePurge, days


def purge_jobs(pool: AsyncConnectionPool, *, history_retention_days: float) -> list[PurgeJob]:
    return [
        TablePurge(pool, "health_aggregator.status_history", "at", days(history_retention_days)),
    ]
