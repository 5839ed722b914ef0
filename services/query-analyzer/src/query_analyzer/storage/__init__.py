"""query-analyzer's statistics in PostgreSQL."""
