"""Multi-CDN delivery: provider adapters behind one interface, purges, asset URLs.

Usable without the rest of the SDK. ``provider`` holds the interface every adapter and
every caller (the SDK's URL helper, the mesh's purge worker) agrees on; ``config`` builds
adapters from configuration; ``routing`` and ``urls`` pick the healthy provider preferred
for a client's region; ``purge`` purges everywhere with bounded retries. The adapters'
client libraries are optional extras, imported only when a purge runs.
"""

from opsmesh_client.cdn.config import CdnConfigError, provider_from_config, providers_from_file
from opsmesh_client.cdn.health import AggregatorHealth, HealthSource, StaticHealth
from opsmesh_client.cdn.provider import (
    CdnProvider,
    ImageTransform,
    PurgeError,
    PurgeLimits,
    PurgeRequest,
    PurgeScope,
)
from opsmesh_client.cdn.purge import Backoff, PurgeOutcome, purge_everywhere
from opsmesh_client.cdn.routing import CdnRouter, RoutingError, RoutingPolicy
from opsmesh_client.cdn.urls import cdn_url, configure, configure_from_file

__all__ = [
    "AggregatorHealth",
    "Backoff",
    "CdnConfigError",
    "CdnProvider",
    "CdnRouter",
    "HealthSource",
    "ImageTransform",
    "PurgeError",
    "PurgeLimits",
    "PurgeOutcome",
    "PurgeRequest",
    "PurgeScope",
    "RoutingError",
    "RoutingPolicy",
    "StaticHealth",
    "cdn_url",
    "configure",
    "configure_from_file",
    "provider_from_config",
    "providers_from_file",
    "purge_everywhere",
]
