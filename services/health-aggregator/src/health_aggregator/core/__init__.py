"""health-aggregator's pure core: check state with TTL expiry and status aggregation. No I/O."""
