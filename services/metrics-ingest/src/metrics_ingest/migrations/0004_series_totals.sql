-- Group-wide totals of metrics_ingest.series_admitted (series, distinct metric names) for
-- the global series limits: admission reads and advances them in O(1) under one advisory
-- lock; release, touch and purge recount them from the table (once a minute per replica).
CREATE TABLE metrics_ingest.series_totals (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    series   bigint  NOT NULL,
    names    bigint  NOT NULL
);

INSERT INTO metrics_ingest.series_totals (series, names)
SELECT count(*), count(DISTINCT name) FROM metrics_ingest.series_admitted;
