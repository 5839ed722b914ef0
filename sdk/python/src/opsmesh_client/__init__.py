"""opsmesh's producer SDK: request metrics, query events and health reports from an
application into the mesh, over Kafka (librdkafka) or the mesh's HTTP ingest.

    import opsmesh_client
    opsmesh_client.init(service="shop", kafka="127.0.0.1:9092")
    # plus one line per framework: see opsmesh_client.integrations

docs/producing.md in the mesh's repository describes what is sent and when.
"""

from __future__ import annotations

from opsmesh_client.client import Client, get_client, init, shutdown
from opsmesh_client.metrics import Counter, Gauge, Histogram, MetricError, Registry
from opsmesh_client.outbox import DropReason
from opsmesh_client.settings import Settings, SettingsError

__all__ = [
    "Client",
    "Counter",
    "DropReason",
    "Gauge",
    "Histogram",
    "MetricError",
    "Registry",
    "Settings",
    "SettingsError",
    "get_client",
    "init",
    "shutdown",
]
