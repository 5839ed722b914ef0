-- Rule groups managed through the REST API (files stay files); replicas reload on change.
CREATE TABLE alert_engine.rule_groups (
    name       text        PRIMARY KEY,
    source     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
