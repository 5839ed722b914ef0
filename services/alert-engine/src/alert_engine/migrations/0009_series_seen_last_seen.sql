-- The retention job finds silent series by last_seen (pipeline/retention.py).
CREATE INDEX IF NOT EXISTS series_seen_last_seen ON alert_engine.series_seen (last_seen);
