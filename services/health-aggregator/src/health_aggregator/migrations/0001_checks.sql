CREATE SCHEMA IF NOT EXISTS health_aggregator;

-- The current state of every check, so a restart resumes TTL expiry where it left off.
CREATE TABLE health_aggregator.checks (
    service     text             NOT NULL,
    instance    text             NOT NULL,
    check_name  text             NOT NULL,
    status      text             NOT NULL,
    critical    boolean          NOT NULL,
    output      text,
    reported_at double precision NOT NULL,
    expires_at  double precision NOT NULL,
    PRIMARY KEY (service, instance, check_name)
);

-- Every status change, for history.
CREATE TABLE health_aggregator.status_history (
    id          bigserial   PRIMARY KEY,
    service     text        NOT NULL,
    instance    text        NOT NULL,
    check_name  text        NOT NULL,
    previous    text,
    status      text        NOT NULL,
    cause       text        NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX status_history_service_at ON health_aggregator.status_history (service, at);
