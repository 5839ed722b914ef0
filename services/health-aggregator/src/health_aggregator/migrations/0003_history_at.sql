-- The retention purge picks expired history by time alone (storage/retention.py);
-- the (service, at) index cannot serve that range.
CREATE INDEX IF NOT EXISTS status_history_at ON health_aggregator.status_history (at);
