"""What alert-engine purges, and why each retention is safe.

- ``alert_engine.alert_history`` (every transition) and
  ``alert_engine.suppressed_notifications`` (rate-limited flushes, for
  ``/api/v1/suppressed``): records, read by the APIs and the notifier's daily summary
  (one day back); nothing decides on them. ``ALERT_RETENTION_DAYS``.
- ``alert_engine.notification_log``: one entry per (group, receiver), the state behind
  Alertmanager's dedup (what was last sent, when, its sequence), so it grows with the
  number of groups ever notified. An entry goes when (1) it was last written longer than
  ``ALERT_ENGINE_NOTIFICATION_LOG_RETENTION_DAYS`` ago, (2) its group is owned by this
  replica (only the owner knows whether the group is live; each replica purges its own
  partitions) and (3) its group is not active here: a group that still holds alerts —
  firing, muted, or resolved but not yet collected — keeps its entry whatever its age,
  so a long silence or a long ``repeat_interval`` never turns its next notification into
  a "first" one. A group that comes back after its entry went starts again at sequence 1
  with reason ``first_notification``; its idempotency key then repeats one sent long
  ago, which is only safe once the notifier has forgotten that key — hence this
  retention must exceed ``NOTIFIER_DELIVERY_RETENTION_DAYS`` (``docs/services.md``).
  The delete is conditional on the entry being unchanged, so a flush that logs the group
  meanwhile keeps it; batches take ``flushing`` (no flush plans from an entry being
  deleted) but never ``lock`` across I/O (``EngineState.purge_notification_log``).

- ``alert_engine.series_seen``: when each absence rule last saw each series. A row is
  what makes its series' absence alert fire after a restart, so it stays as long as the
  rule expects the series: its ``forget_after`` (or
  ``ALERT_ENGINE_ABSENCE_FORGET_AFTER_DAYS``), the same cutoff ``Evaluator.tick`` forgets
  the series in memory by (``Evaluator.forget_after_s``). Rows of rules that no longer
  exist go after the default. A row purged while a replica still holds it in memory was
  forgotten there too (same cutoff); a series that comes back is saved again.

Tables bounded by design are not purged here: ``alerts`` (pending and firing rule
alerts), ``stored_alerts`` (collected 15 minutes after their resolve is sent), expired
``silences`` (dropped by the maintenance job after ``ALERT_RETENTION_DAYS``),
``rule_groups`` (configuration).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from psycopg_pool import AsyncConnectionPool

from alert_engine.pipeline.state import EngineState
from alert_engine.storage.notification_log import LoggedAt
from opsmesh.db.retention import Batch, PurgeJob, TablePurge, days


class NotificationLogPurge:
    table = "alert_engine.notification_log"
    column = "notified_at"

    def __init__(self, state: EngineState, retention_s: float) -> None:
        self._state = state
        self.retention_s = retention_s

    async def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]:
        await self._state.restored.wait()
        after: LoggedAt | None = None
        while True:
            deleted, found = await self._state.purge_notification_log(cutoff, limit, after)
            yield Batch(deleted, more=len(found) >= limit)
            if len(found) < limit:
                return
            after = found[-1]


class SeriesSeenPurge:
    """Deletes ``series_seen`` rows silent for longer than their rule's ``forget_after``:
    one bounded statement per batch, each rule's cutoff passed as arrays."""

    table = "alert_engine.series_seen"
    column = "last_seen"

    def __init__(self, pool: AsyncConnectionPool, state: EngineState, retention_s: float) -> None:
        self._pool = pool
        self._state = state
        self.retention_s = retention_s  # the default; rules may keep theirs longer

    async def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]:
        now = cutoff + self.retention_s
        evaluator = self._state.evaluator
        rules = evaluator.absence_rules()
        names = [r.key for r in rules]
        cutoffs = [now - evaluator.forget_after_s(r) for r in rules]
        while True:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(
                    "SELECT set_config('lock_timeout', '2000ms', true),"
                    " set_config('statement_timeout', '30000ms', true)"
                )
                cursor = await conn.execute(_DELETE_SILENT_SERIES, (names, cutoffs, cutoff, limit))
                deleted = cursor.rowcount
            yield Batch(deleted, more=deleted >= limit)
            if deleted < limit:
                return


# Rows older than their rule's cutoff (rules no longer configured: the default cutoff),
# found through the last_seen index.
_DELETE_SILENT_SERIES = """
DELETE FROM alert_engine.series_seen WHERE ctid = ANY(ARRAY(
    SELECT s.ctid FROM alert_engine.series_seen s
    LEFT JOIN unnest(%s::text[], %s::float8[]) AS r(rule, cutoff) ON r.rule = s.rule
    WHERE s.last_seen < coalesce(r.cutoff, %s)
    LIMIT %s FOR UPDATE OF s SKIP LOCKED))
"""


def purge_jobs(
    pool: AsyncConnectionPool,
    state: EngineState,
    *,
    retention_days: float,
    notification_log_retention_days: float,
    absence_forget_after_days: float,
) -> list[PurgeJob]:
    kept = days(retention_days)
    return [
        TablePurge(pool, "alert_engine.alert_history", "at", kept),
        TablePurge(pool, "alert_engine.suppressed_notifications", "at", kept),
        NotificationLogPurge(state, days(notification_log_retention_days)),
        SeriesSeenPurge(pool, state, days(absence_forget_after_days)),
    ]
