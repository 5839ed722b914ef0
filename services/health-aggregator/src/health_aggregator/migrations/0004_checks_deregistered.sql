-- Deregistered checks (silent past their TTL for HEALTH_AGGREGATOR_DEREGISTER_AFTER_DAYS):
-- marked, so every replica's fleet view drops them at its next refresh, then purged.
ALTER TABLE health_aggregator.checks ADD COLUMN deregistered_at double precision;
CREATE INDEX checks_deregistered_at ON health_aggregator.checks (deregistered_at)
    WHERE deregistered_at IS NOT NULL;
