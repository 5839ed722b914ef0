-- Which engine process merged each alert (a per-process id) and which one wrote the row
-- (the group's owner), so a replica re-reads only rows it holds in neither role; and an
-- index for that incremental re-read.
ALTER TABLE alert_engine.stored_alerts ADD COLUMN origin text NOT NULL DEFAULT '';
ALTER TABLE alert_engine.stored_alerts ADD COLUMN persisted_by text NOT NULL DEFAULT '';
CREATE INDEX stored_alerts_updated_at ON alert_engine.stored_alerts (updated_at);
