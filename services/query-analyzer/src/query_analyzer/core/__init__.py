"""query-analyzer's pure core: fingerprints and statistics. No I/O."""
