"""health-aggregator's state and history in PostgreSQL."""
