-- When absence rules last saw each series, so "no data for N" spans restarts.
CREATE TABLE alert_engine.series_seen (
    rule        text             NOT NULL,
    fingerprint text             NOT NULL,
    labels      jsonb            NOT NULL,
    last_seen   double precision NOT NULL,
    PRIMARY KEY (rule, fingerprint)
);
