-- Retention purges pick expired rows by their time (notifier/delivery/retention.py), so
-- each purged table needs an index on it. On a large existing delivery log, create the
-- index beforehand with CREATE INDEX CONCURRENTLY under this name: this step is then a
-- no-op instead of blocking deliveries while it builds.
CREATE INDEX IF NOT EXISTS delivery_log_finished_at ON notifier.delivery_log (finished_at);
CREATE INDEX IF NOT EXISTS slack_messages_created_at ON notifier.slack_messages (created_at);
