-- Group keys reach 4,096 characters (core/routing.py MAX_GROUP_KEY; up to 16 kB of
-- UTF-8): a btree entry holds at most ~2.7 kB, so one long key made the whole flush's log
-- upsert fail and stalled every group. The log is keyed by a digest of the group key instead.
-- convert_to() is STABLE only because the encoding could change; this database's is fixed.
CREATE OR REPLACE FUNCTION alert_engine.key_digest(key text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT sha256(convert_to(key, 'UTF8')) $$;

ALTER TABLE alert_engine.notification_log DROP CONSTRAINT IF EXISTS notification_log_pkey;
CREATE UNIQUE INDEX IF NOT EXISTS notification_log_key
    ON alert_engine.notification_log (alert_engine.key_digest(group_key), receiver);
