"""alert-engine's HTTP APIs: Alertmanager API v2 and the opsmesh REST API v1."""
