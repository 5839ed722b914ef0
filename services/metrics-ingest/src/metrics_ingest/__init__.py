"""opsmesh metrics-ingest."""
