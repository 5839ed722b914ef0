-- The W3C traceparent of what fired each alert (the signal, or the POST), so its routing
-- records and notifications continue that trace across restarts and replicas; '' when
-- unknown (rows written before this version).
ALTER TABLE alert_engine.alerts ADD COLUMN traceparent text NOT NULL DEFAULT '';
ALTER TABLE alert_engine.stored_alerts ADD COLUMN traceparent text NOT NULL DEFAULT '';
