"""query-analyzer pipeline stages: slow queries → fingerprints → statistics."""
