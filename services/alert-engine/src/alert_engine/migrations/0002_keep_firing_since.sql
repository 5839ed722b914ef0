-- keep_firing_for survives restarts: when the condition first stopped holding.
ALTER TABLE alert_engine.alerts ADD COLUMN keep_firing_since double precision;
