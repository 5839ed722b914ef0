-- Retention purges pick expired rows by time (storage/retention.py): an index on each
-- purged table's time column (query_windows and findings have theirs already).
CREATE INDEX IF NOT EXISTS query_stats_last_seen ON query_analyzer.query_stats (last_seen);
CREATE INDEX IF NOT EXISTS plans_captured_at ON query_analyzer.plans (captured_at);
CREATE INDEX IF NOT EXISTS recommendations_updated_at
    ON query_analyzer.recommendations (updated_at);
