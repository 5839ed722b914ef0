"""A generic CDN (or a cache in front of the origin, e.g. Varnish or nginx with a purge
endpoint): purges are HTTP requests to one configured endpoint.

Each call sends ``{"scope": "url"|"prefix"|"tag"|"all", "values": [...]}`` as JSON with
the configured method (``POST`` by default; ``PURGE`` for Varnish-style endpoints), at most
``max_per_call`` values at a time, with ``Authorization: Bearer <token>`` when a token is
configured. Any 2xx is success. Asset URLs are ``base_url/path`` with the image transform
as query parameters whose names are configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from opsmesh_client.cdn._common import (
    batches,
    check_supported,
    join_url,
    send,
    transform_params,
    with_query,
)
from opsmesh_client.cdn.provider import (
    ImageTransform,
    PurgeLimits,
    PurgeRequest,
    PurgeScope,
)

DEFAULT_IMAGE_PARAMS: Mapping[str, str] = {
    "width": "width",
    "height": "height",
    "quality": "quality",
    "format": "format",
    "fit": "fit",
}


@dataclass(frozen=True, slots=True)
class GenericSettings:
    base_url: str  # where assets are served from
    purge_url: str  # where purge requests go
    purge_method: str = "POST"
    max_per_call: int = 100
    scopes: frozenset[PurgeScope] = field(default_factory=lambda: frozenset(PurgeScope))
    image_params: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGE_PARAMS))
    timeout_s: float = 10.0


class GenericProvider:
    def __init__(self, name: str, settings: GenericSettings, *, token: str | None = None) -> None:
        self._name = name
        self._settings = settings
        self._token = token
        self._limits = PurgeLimits(
            max_values_per_call=settings.max_per_call, supported=settings.scopes
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> PurgeLimits:
        return self._limits

    def __repr__(self) -> str:  # never the token
        return f"GenericProvider({self._name!r}, purge_url={self._settings.purge_url!r})"

    async def purge(self, request: PurgeRequest) -> None:
        import httpx  # noqa: PLC0415  (optional dependency: the `cdn` extra)

        check_supported(self._name, self._limits.supported, request)
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        chunks = (
            [()]
            if request.scope is PurgeScope.ALL
            else batches(request.values, self._settings.max_per_call)
        )
        async with httpx.AsyncClient(timeout=self._settings.timeout_s, headers=headers) as client:
            for chunk in chunks:
                await send(
                    self._name,
                    client,
                    self._settings.purge_method,
                    self._settings.purge_url,
                    json={"scope": request.scope.value, "values": list(chunk)},
                )

    def asset_url(self, path: str, *, transform: ImageTransform | None = None) -> str:
        url = join_url(self._settings.base_url, path)
        return with_query(url, transform_params(transform, self._settings.image_params))
