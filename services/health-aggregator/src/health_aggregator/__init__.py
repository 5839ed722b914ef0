"""opsmesh health-aggregator."""
