-- Which engine process merged each alert (a per-process id), so a replica re-reads only
-- the rows other processes wrote; and an index for that incremental re-read.
ALTER TABLE alert_engine.stored_alerts ADD COLUMN origin text NOT NULL DEFAULT '';
CREATE INDEX stored_alerts_updated_at ON alert_engine.stored_alerts (updated_at);
