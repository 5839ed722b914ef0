-- Rollup history partitioned by UTC day (declarative range partitioning), so retention
-- drops whole partitions instead of deleting rows. Partitions are named rollups_pYYYYMMDD
-- and created ahead by the service; existing rows move into partitions for their days.
ALTER TABLE metrics_ingest.rollups RENAME TO rollups_unpartitioned;
ALTER TABLE metrics_ingest.rollups_unpartitioned
    RENAME CONSTRAINT rollups_pkey TO rollups_unpartitioned_pkey;
ALTER INDEX metrics_ingest.rollups_name_time RENAME TO rollups_unpartitioned_name_time;

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
    quantiles    jsonb            NOT NULL DEFAULT '{}',
    PRIMARY KEY (series, window_s, window_start)
) PARTITION BY RANGE (window_start);

CREATE INDEX rollups_name_time ON metrics_ingest.rollups (name, window_s, window_start);

DO $$
DECLARE
    day date;
BEGIN
    FOR day IN
        SELECT DISTINCT (window_start AT TIME ZONE 'UTC')::date
        FROM metrics_ingest.rollups_unpartitioned
    LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS metrics_ingest.%I PARTITION OF metrics_ingest.rollups'
            ' FOR VALUES FROM (%L) TO (%L)',
            'rollups_p' || to_char(day, 'YYYYMMDD'),
            day::timestamp AT TIME ZONE 'UTC',
            (day + 1)::timestamp AT TIME ZONE 'UTC'
        );
    END LOOP;
END
$$;

INSERT INTO metrics_ingest.rollups
    (series, name, labels, kind, window_s, window_start, window_end,
     count, sum, min, max, last, increase)
SELECT series, name, labels, kind, window_s, window_start, window_end,
       count, sum, min, max, last, increase
FROM metrics_ingest.rollups_unpartitioned;

DROP TABLE metrics_ingest.rollups_unpartitioned;
