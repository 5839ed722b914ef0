"""``python -m metrics_ingest``: settings, logging, serve until SIGTERM."""

from metrics_ingest.app import SERVICE, build
from metrics_ingest.settings import MetricsIngestSettings
from opsmesh.service_main import serve

if __name__ == "__main__":
    serve(SERVICE, MetricsIngestSettings, build)
