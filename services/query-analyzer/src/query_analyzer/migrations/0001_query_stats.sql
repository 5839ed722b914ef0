CREATE SCHEMA IF NOT EXISTS query_analyzer;

CREATE TABLE query_analyzer.query_stats (
    fingerprint      text             NOT NULL,
    database         text             NOT NULL,
    fingerprint_kind text             NOT NULL,
    fingerprint_version text          NOT NULL,
    display_sql      text             NOT NULL,
    sample_sql       text             NOT NULL,
    calls            bigint           NOT NULL,
    total_ms         double precision NOT NULL,
    min_ms           double precision NOT NULL,
    max_ms           double precision NOT NULL,
    rows             bigint           NOT NULL,
    last_seen        timestamptz      NOT NULL,
    PRIMARY KEY (fingerprint, database, fingerprint_version)
);
CREATE INDEX query_stats_total ON query_analyzer.query_stats (total_ms DESC);
