-- A receiver may have several integrations (email, Slack, PagerDuty, webhooks); each is
-- delivered and recorded on its own, so a retry resends only those that did not succeed.
ALTER TABLE notifier.delivery_log ADD COLUMN integration text NOT NULL DEFAULT '';
ALTER TABLE notifier.delivery_log DROP CONSTRAINT delivery_log_pkey;
ALTER TABLE notifier.delivery_log ADD PRIMARY KEY (idempotency_key, integration);

-- Where a group's Slack message is, so its resolution updates it (chat.update).
CREATE TABLE notifier.slack_messages (
    ref        text        PRIMARY KEY,
    channel    text        NOT NULL,
    ts         text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
