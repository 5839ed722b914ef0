-- Per-window statistics with a mergeable sketch, so any longer window's percentiles
-- are the merge of its windows (core/sketch.py).
CREATE TABLE query_analyzer.query_windows (
    fingerprint         text             NOT NULL,
    database            text             NOT NULL,
    fingerprint_version text             NOT NULL,
    window_start        timestamptz      NOT NULL,
    calls               bigint           NOT NULL,
    total_ms            double precision NOT NULL,
    min_ms              double precision NOT NULL,
    max_ms              double precision NOT NULL,
    rows                bigint           NOT NULL,
    sketch              jsonb            NOT NULL,
    PRIMARY KEY (fingerprint, database, fingerprint_version, window_start)
);
CREATE INDEX query_windows_start ON query_analyzer.query_windows (window_start);

-- One row per finding identity (kind + pattern); occurrences count repeats.
CREATE TABLE query_analyzer.findings (
    id           text        PRIMARY KEY,
    kind         text        NOT NULL,
    fingerprint  text        NOT NULL,
    database     text        NOT NULL,
    application  text,
    title        text        NOT NULL,
    evidence     jsonb       NOT NULL,
    occurrences  bigint      NOT NULL DEFAULT 1,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL
);
CREATE INDEX findings_last_seen ON query_analyzer.findings (last_seen DESC);

-- The latest plan per fingerprint and source (from an event, or our own EXPLAIN).
CREATE TABLE query_analyzer.plans (
    fingerprint  text        NOT NULL,
    database     text        NOT NULL,
    source       text        NOT NULL,
    plan         jsonb       NOT NULL,
    problems     jsonb       NOT NULL,
    captured_at  timestamptz NOT NULL,
    PRIMARY KEY (fingerprint, database, source)
);

CREATE TABLE query_analyzer.recommendations (
    fingerprint    text             NOT NULL,
    database       text             NOT NULL,
    reason         text             NOT NULL,
    validated      boolean          NOT NULL,
    table_name     text,
    columns        text[],
    ddl            text,
    cost_before    double precision,
    cost_after     double precision,
    time_saved_ms  double precision,
    evidence       jsonb            NOT NULL,
    status         text             NOT NULL DEFAULT 'open',
    updated_at     timestamptz      NOT NULL,
    PRIMARY KEY (fingerprint, database)
);
