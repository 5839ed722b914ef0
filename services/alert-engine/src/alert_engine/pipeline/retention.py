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
  deleted) but never ``lock`` across I/O.

Tables bounded by design are not purged here: ``alerts`` (pending and firing rule
alerts), ``stored_alerts`` (collected 15 minutes after their resolve is sent), expired
``silences`` (dropped by the maintenance job after ``ALERT_RETENTION_DAYS``),
``rule_groups`` (configuration).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from psycopg_pool import AsyncConnectionPool

from alert_engine.pipeline.state import EngineState
from alert_engine.storage.notification_log import LoggedAt, NotificationLog
from opsmesh.db.retention import Batch, PurgeJob, TablePurge, days


class NotificationLogPurge:
    table = "alert_engine.notification_log"
    column = "notified_at"

    def __init__(
        self, state: Callable[[], EngineState], log: NotificationLog, retention_s: float
    ) -> None:
        self._state = state
        self._log = log
        self.retention_s = retention_s

    async def batches(self, cutoff: float, limit: int) -> AsyncGenerator[Batch, None]:
        state = self._state()
        await state.restored.wait()
        after: LoggedAt | None = None
        while True:
            async with state.flushing:
                found = await self._log.expired(cutoff, limit, after)
                async with state.lock:
                    active = {g.key for g in state.engine.dispatcher.groups()}
                    mine = [e for e in found if state.owns(e[0]) and e[0] not in active]
                deleted = await self._log.forget(mine)
                chosen = set(mine)
                async with state.lock:
                    for group_key, receiver, notified_at in found:
                        entry = state.entries.get((group_key, receiver))
                        if entry is None or entry.notified_at != notified_at:
                            continue  # logged again since it was read
                        # Ours and deleted, or another replica's: that one is read again
                        # from the table if its partition is ever assigned here, so the
                        # copy in memory only costs memory.
                        if (group_key, receiver, notified_at) in chosen or not state.owns(
                            group_key
                        ):
                            del state.entries[(group_key, receiver)]
            yield Batch(deleted, more=len(found) >= limit)
            if len(found) < limit:
                return
            after = found[-1]


def purge_jobs(
    pool: AsyncConnectionPool,
    state: Callable[[], EngineState],
    *,
    retention_days: float,
    notification_log_retention_days: float,
) -> list[PurgeJob]:
    kept = days(retention_days)
    return [
        TablePurge(pool, "alert_engine.alert_history", "at", kept),
        TablePurge(pool, "alert_engine.suppressed_notifications", "at", kept),
        NotificationLogPurge(state, NotificationLog(pool), days(notification_log_retention_days)),
    ]
