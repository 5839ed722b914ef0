-- Every alert the engine knows (rule-evaluated and posted to /api/v2/alerts), as
-- Alertmanager keeps them, but durable: a restart keeps alerts and their timeouts.
CREATE TABLE alert_engine.stored_alerts (
    fingerprint   text             PRIMARY KEY,
    labels        jsonb            NOT NULL,
    annotations   jsonb            NOT NULL,
    starts_at     double precision NOT NULL,
    ends_at       double precision,
    updated_at    double precision NOT NULL,
    generator_url text             NOT NULL DEFAULT '',
    timeout       boolean          NOT NULL DEFAULT false,
    source        text             NOT NULL
);

CREATE TABLE alert_engine.silences (
    id         text             PRIMARY KEY,
    matchers   jsonb            NOT NULL,
    starts_at  double precision NOT NULL,
    ends_at    double precision NOT NULL,
    created_by text             NOT NULL,
    comment    text             NOT NULL,
    updated_at double precision NOT NULL
);

-- Notifications held back by a receiver's rate limit (retried at the next interval).
CREATE TABLE alert_engine.suppressed_notifications (
    id        bigserial   PRIMARY KEY,
    group_key text        NOT NULL,
    receiver  text        NOT NULL,
    reason    text        NOT NULL,
    alerts    integer     NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX suppressed_notifications_at ON alert_engine.suppressed_notifications (at);

-- Rule state now only holds pending and firing alerts; resolved ones live in stored_alerts.
DELETE FROM alert_engine.alerts WHERE state = 'resolved';
