-- Each check's health-topic partition (its owner replica loads only its partitions), and
-- when its status (or criticality) last changed, so the fleet view refreshes with what
-- changes its aggregate only, not with every heartbeat.
ALTER TABLE health_aggregator.checks ADD COLUMN kafka_partition integer;
ALTER TABLE health_aggregator.checks
    ADD COLUMN changed_at timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX checks_partition ON health_aggregator.checks (kafka_partition);
CREATE INDEX checks_changed_at ON health_aggregator.checks (changed_at);
