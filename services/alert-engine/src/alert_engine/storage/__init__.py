"""alert-engine's durable state in PostgreSQL."""
