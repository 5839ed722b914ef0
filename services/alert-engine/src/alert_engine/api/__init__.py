"""alert-engine's HTTP APIs: Alertmanager API v2 and the opsmesh REST API v1."""

# Alertmanager accepts large alert batches; bound them all the same (413 beyond).
MAX_BODY = 8 * 1024 * 1024
