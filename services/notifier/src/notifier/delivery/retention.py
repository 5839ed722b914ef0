"""What the notifier purges, and why each retention is safe.

- ``notifier.delivery_log``: the once-per-key guarantee reads delivered rows, so a row
  must outlive every way its request can come back: a consumer group whose offsets were
  reset re-reads ``opsmesh.notifications`` as far back as the topic keeps records, and
  ``opsmesh dlq replay`` resends a dead-lettered request (whose other integrations may
  have been delivered) as long as ``opsmesh.dlq`` keeps it.
  ``NOTIFICATION_REDELIVERY_DAYS`` is the longer of the two, and the setting may not go
  below it. alert-engine derives a
  group's idempotency keys from its notification log, whose retention must exceed this
  one (``docs/services.md``): a group whose log entry is purged starts again at sequence
  1, and must not meet a key the notifier still remembers as delivered.
- ``notifier.slack_messages``: where a firing group's Slack message is, so its resolve
  edits it. Every firing post (repeats included) refreshes ``created_at``, so only a
  group silent for the whole retention loses its reference; its resolve is then posted
  as a new message, not lost.

The Redis claims (``notifier:claim:*``) expire by themselves (a TTL of the retry
deadline plus a minute) and need no purge.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from opsmesh.db.retention import PurgeJob, TablePurge, days


def purge_jobs(pool: AsyncConnectionPool, *, delivery_retention_days: float) -> list[PurgeJob]:
    retention_s = days(delivery_retention_days)
    return [
        TablePurge(pool, "notifier.delivery_log", "finished_at", retention_s),
        TablePurge(pool, "notifier.slack_messages", "created_at", retention_s),
    ]
