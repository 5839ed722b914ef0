-- Each check's health-topic partition (its owner replica loads only its partitions), and
-- when its row last changed, so the read view refreshes incrementally.
ALTER TABLE health_aggregator.checks ADD COLUMN kafka_partition integer;
ALTER TABLE health_aggregator.checks
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX checks_partition ON health_aggregator.checks (kafka_partition);
CREATE INDEX checks_updated_at ON health_aggregator.checks (updated_at);
