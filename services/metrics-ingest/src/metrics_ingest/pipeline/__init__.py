"""metrics-ingest pipeline stages: Kafka batch → rollups → history + signals."""
