"""``python -m health_aggregator``: settings, logging, serve until SIGTERM."""

from health_aggregator.app import SERVICE, build
from health_aggregator.settings import HealthAggregatorSettings
from opsmesh.service_main import serve

if __name__ == "__main__":
    serve(SERVICE, HealthAggregatorSettings, build)
