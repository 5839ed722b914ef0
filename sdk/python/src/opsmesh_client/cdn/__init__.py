"""Multi-CDN delivery: provider adapters behind one interface, purges, asset URLs.

Usable without the rest of the SDK. ``provider`` holds the interface every adapter and
every caller (the SDK's URL helper, the mesh's purge worker) agrees on.
"""

from opsmesh_client.cdn.provider import (
    CdnProvider,
    ImageTransform,
    PurgeError,
    PurgeLimits,
    PurgeRequest,
    PurgeScope,
)

__all__ = [
    "CdnProvider",
    "ImageTransform",
    "PurgeError",
    "PurgeLimits",
    "PurgeRequest",
    "PurgeScope",
]
