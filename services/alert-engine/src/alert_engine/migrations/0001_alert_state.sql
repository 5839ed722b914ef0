CREATE SCHEMA IF NOT EXISTS alert_engine;

-- Alerts that are pending or firing, and resolved ones whose resolve has not been
-- notified yet: what a restarted engine needs to send exactly one resolve.
CREATE TABLE alert_engine.alerts (
    fingerprint  text             PRIMARY KEY,
    rule         text             NOT NULL,
    labels       jsonb            NOT NULL,
    annotations  jsonb            NOT NULL,
    state        text             NOT NULL,
    value        double precision,
    active_at    double precision,
    fired_at     double precision,
    resolved_at  double precision,
    last_true_at double precision,
    updated_at   timestamptz      NOT NULL DEFAULT now()
);

-- Every state transition, for history and audits.
CREATE TABLE alert_engine.alert_history (
    id          bigserial        PRIMARY KEY,
    fingerprint text             NOT NULL,
    rule        text             NOT NULL,
    labels      jsonb            NOT NULL,
    previous    text             NOT NULL,
    state       text             NOT NULL,
    value       double precision,
    at          timestamptz      NOT NULL
);
CREATE INDEX alert_history_fingerprint_at ON alert_engine.alert_history (fingerprint, at);
CREATE INDEX alert_history_at ON alert_engine.alert_history (at);

-- The notification log: the last notification per (group, receiver), so dedup and
-- repeat intervals survive restarts and failover.
CREATE TABLE alert_engine.notification_log (
    group_key       text             NOT NULL,
    receiver        text             NOT NULL,
    firing          text[]           NOT NULL,
    resolved        text[]           NOT NULL,
    sequence        bigint           NOT NULL,
    reason          text             NOT NULL,
    idempotency_key text             NOT NULL,
    notified_at     double precision NOT NULL,
    PRIMARY KEY (group_key, receiver)
);
