"""The analysed (target) database: EXPLAIN, hypothetical indexes, and applying advice."""
