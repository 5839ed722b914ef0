CREATE SCHEMA IF NOT EXISTS notifier;

-- One row per idempotency key: the notifier delivers each key at most once.
CREATE TABLE notifier.delivery_log (
    idempotency_key text             PRIMARY KEY,
    receiver        text             NOT NULL,
    channel         text             NOT NULL,
    outcome         text             NOT NULL,
    attempts        integer          NOT NULL,
    status_code     integer,
    error           text,
    finished_at     timestamptz      NOT NULL DEFAULT now()
);
