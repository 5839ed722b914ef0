"""CDN purges: a request to drop cached content from the CDN providers, as events.

A deploy (or anyone with the CLI, ``opsmesh cdn purge``) publishes ``CdnPurgeRequested``
on ``opsmesh.cdn-purges``; the notifier, which owns outbound delivery with retries and
dead letters, purges each configured provider once per (``id``, provider). The trace
context travels in the record's headers (``traceparent``), as for every event.

The scopes are the SDK's (``opsmesh_client.cdn.PurgeScope``), named here again because
the shared library does not import the SDK; a contract test holds the two equal.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import msgspec

from opsmesh.events.base import EpochSeconds, Event, Name, Text

# Provider names are a label value of the purge signals and part of the delivery log's
# key: short, and without separators or spaces.
PROVIDER_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
ProviderName = Annotated[str, msgspec.Meta(pattern=PROVIDER_NAME_PATTERN)]
PurgeId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
PurgeValue = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
MAX_PURGE_VALUES = 1000
MAX_PURGE_PROVIDERS = 16


class CdnPurgeScope(enum.StrEnum):
    URL = "url"  # full URLs
    PREFIX = "prefix"  # URL prefixes (a path and everything under it)
    TAG = "tag"  # cache tags / surrogate keys
    ALL = "all"  # everything the provider caches for the site


class CdnPurgeRequested(Event, kw_only=True, frozen=True):
    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.cdn.purge-requested"
    SCHEMA_VERSION: ClassVar[int] = 1

    # The purge's identity: each provider is purged once per id (a redelivered or replayed
    # event purges nothing twice); a new purge of the same content takes a new id.
    id: PurgeId
    scope: CdnPurgeScope
    # URLs, prefixes or tags; none for ``all`` (the notifier dead-letters a mismatch).
    values: Annotated[list[PurgeValue], msgspec.Meta(max_length=MAX_PURGE_VALUES)] = msgspec.field(
        default_factory=list
    )
    # The providers to purge; empty: every configured provider.
    providers: Annotated[list[ProviderName], msgspec.Meta(max_length=MAX_PURGE_PROVIDERS)] = (
        msgspec.field(default_factory=list)
    )
    source: Name  # who asked: "deploy", "cli", an application's name
    reason: Text = ""  # why, for humans: "release 1.4.2"
    requested_at: EpochSeconds


# -- how the mesh names purges and providers elsewhere, declared once ----------------------

# health-aggregator's service for the providers' canary probes: one check per provider,
# named as the provider (the SDK's cdn_url and the CdnProviderFailing rule read them).
CDN_HEALTH_SERVICE = "cdn"
# The notifier records purges in its delivery log (and so in GET /api/v1/deliveries) under
# this receiver, with key ``purge_key(id)`` and one integration per provider.
PURGE_RECEIVER = "cdn"
PURGE_CHANNEL = "cdn-purge"
_KEY_PREFIX = "cdn-purge:"
_INTEGRATION_PREFIX = "cdn:"


def purge_key(purge_id: str) -> str:
    return f"{_KEY_PREFIX}{purge_id}"


def purge_id_of(key: str) -> str | None:
    """The purge id of a delivery log key; None for a notification's key."""
    return key[len(_KEY_PREFIX) :] if key.startswith(_KEY_PREFIX) else None


def purge_integration(provider: str) -> str:
    return f"{_INTEGRATION_PREFIX}{provider}"


def provider_of(integration: str) -> str | None:
    """The provider of a delivery log integration; None for a notification's."""
    if not integration.startswith(_INTEGRATION_PREFIX):
        return None
    return integration[len(_INTEGRATION_PREFIX) :]
