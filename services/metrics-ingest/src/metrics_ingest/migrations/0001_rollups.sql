CREATE SCHEMA IF NOT EXISTS metrics_ingest;

-- One row per closed window of one series. Re-emitting a window (a replay after a crash)
-- overwrites the row, so history never double-counts.
CREATE TABLE metrics_ingest.rollups (
    series       text             NOT NULL,
    name         text             NOT NULL,
    labels       jsonb            NOT NULL,
    kind         text             NOT NULL,
    window_s     double precision NOT NULL,
    window_start timestamptz      NOT NULL,
    window_end   timestamptz      NOT NULL,
    count        bigint           NOT NULL,
    sum          double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    last         double precision NOT NULL,
    increase     double precision NOT NULL,
    PRIMARY KEY (series, window_s, window_start)
);

CREATE INDEX rollups_name_time ON metrics_ingest.rollups (name, window_start);
