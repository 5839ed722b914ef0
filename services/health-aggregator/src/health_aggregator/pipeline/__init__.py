"""health-aggregator pipeline stages: reports → check state → history + signals."""
