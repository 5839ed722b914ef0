"""The one interface behind which every CDN provider sits.

A purge names what to drop (URLs, prefixes, tags/surrogate keys, or everything); a provider
splits it into the batches its API allows and raises ``PurgeError`` with a class: transient
failures (timeouts, 5xx, 429) are retried by the caller with backoff and a bound;
deterministic ones (bad credentials, a scope the provider cannot purge) are dead-lettered
with the reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class PurgeScope(enum.StrEnum):
    URL = "url"
    PREFIX = "prefix"
    TAG = "tag"  # Cloudflare cache tags, Fastly surrogate keys, CloudFront: not supported
    ALL = "all"


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    scope: PurgeScope
    # URLs, prefixes or tags; empty for ALL.
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.scope is PurgeScope.ALL and self.values:
            raise ValueError("a purge of everything takes no values")
        if self.scope is not PurgeScope.ALL and not self.values:
            raise ValueError(f"a {self.scope} purge needs at least one value")


@dataclass(frozen=True, slots=True)
class PurgeLimits:
    """What one API call of the provider may carry; the adapter batches within these."""

    max_values_per_call: int
    supported: frozenset[PurgeScope] = field(default_factory=lambda: frozenset(PurgeScope))


class PurgeError(Exception):
    def __init__(self, provider: str, reason: str, *, transient: bool) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason
        self.transient = transient


@runtime_checkable
class CdnProvider(Protocol):
    """One CDN. ``name`` is its configured name (unique per deployment, e.g. ``cloudflare``)."""

    @property
    def name(self) -> str: ...

    @property
    def limits(self) -> PurgeLimits: ...

    async def purge(self, request: PurgeRequest) -> None:
        """Purge everything ``request`` names, in as many calls as the limits need.

        Raises ``PurgeError``; a batch that succeeded before a failure is not undone, and a
        purge is idempotent, so the caller retries the whole request.
        """
        ...

    def asset_url(self, path: str, *, transform: ImageTransform | None = None) -> str:
        """The public URL of ``path`` on this CDN, with ``transform`` in its own syntax."""
        ...


@dataclass(frozen=True, slots=True)
class ImageTransform:
    """Image parameters expressed once; each provider renders them in its URL syntax."""

    width: int | None = None
    height: int | None = None
    quality: int | None = None  # 1..100
    format: str | None = None  # "webp", "avif", "jpeg", "png", "auto"
    fit: str | None = None  # "cover", "contain", "scale-down"
