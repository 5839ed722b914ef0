"""What query-analyzer purges, and why each retention is safe.

- ``query_analyzer.query_windows`` (per fingerprint and window, with its sketch): the
  analysis reads back a regression's current and baseline windows and the top
  fingerprints of the last day (``AnalysisConfig``); ``windows_needed_s`` is that reach,
  and the window retention may not be shorter. Statistics "over all time" (``GET
  /api/v1/queries`` without ``since``) are over the windows kept.
- ``query_analyzer.query_stats`` (a fingerprint's running totals): purged once the
  fingerprint has not been seen for the retention; if it comes back, its totals start
  again.
- ``query_analyzer.findings``: one row per pattern; purged once the pattern has not
  recurred for the retention (a recurrence afterwards is a new finding).
- ``query_analyzer.plans`` and ``query_analyzer.recommendations``: refreshed by every
  analysis of a fingerprint that is still slow; ones not refreshed for the retention
  describe a query that went away or stopped being slow (an applied index's advice
  included).
- ``query_analyzer.route_profiles`` and ``profile_functions`` (request profiles summed):
  a route or function not profiled for the retention was renamed, removed or got fast.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from opsmesh.db.retention import PurgeJob, TablePurge, days
from query_analyzer.pipeline.analysis import AnalysisConfig


def windows_needed_s(window_s: float, config: AnalysisConfig | None = None) -> float:
    """How far back the analysis reads windows: a regression's windows, or a day's top."""
    c = config or AnalysisConfig()
    return max((c.regression_now_windows + c.regression_baseline_windows) * window_s, c.lookback_s)


def purge_jobs(
    pool: AsyncConnectionPool, *, window_retention_days: float, retention_days: float
) -> list[PurgeJob]:
    kept = days(retention_days)
    return [
        TablePurge(
            pool, "query_analyzer.query_windows", "window_start", days(window_retention_days)
        ),
        TablePurge(pool, "query_analyzer.query_stats", "last_seen", kept),
        TablePurge(pool, "query_analyzer.findings", "last_seen", kept),
        TablePurge(pool, "query_analyzer.plans", "captured_at", kept),
        TablePurge(pool, "query_analyzer.recommendations", "updated_at", kept),
        TablePurge(pool, "query_analyzer.route_profiles", "last_seen", kept),
        TablePurge(pool, "query_analyzer.profile_functions", "last_seen", kept),
    ]
