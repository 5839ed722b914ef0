-- The series admitted under the per-metric cardinality limit, shared by every replica, so
-- the limit holds for the whole consumer group rather than per replica. Live series are
-- touched by their owner every minute; rows of series nobody touched for longer than the
-- idle time (a replica that died) are purged.
CREATE TABLE metrics_ingest.series_admitted (
    name      text        NOT NULL,
    series    text        NOT NULL,
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (name, series)
);

CREATE INDEX series_admitted_last_seen ON metrics_ingest.series_admitted (last_seen);
