-- hypopg in the opsmesh database from the first start, so index advice (EXPLAIN with
-- hypothetical indexes) works without a manual CREATE EXTENSION.
CREATE EXTENSION IF NOT EXISTS hypopg;
