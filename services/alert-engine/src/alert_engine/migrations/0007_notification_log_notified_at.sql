-- The notification log's retention purge walks expired entries by time
-- (pipeline/retention.py).
CREATE INDEX IF NOT EXISTS notification_log_notified_at
    ON alert_engine.notification_log (notified_at);
