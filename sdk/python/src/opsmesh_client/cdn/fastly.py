"""Fastly through its purge API over HTTP (the ``cdn`` extra: httpx).

- a URL: ``POST /purge/{host}/{path}`` (one URL a request, as the API takes them);
- one surrogate key: ``POST /service/{id}/purge/{key}``; several: ``POST
  /service/{id}/purge`` with the keys space-separated in a ``Surrogate-Key`` header, at
  most 256 a request (Fastly's documented batch limit);
- everything: ``POST /service/{id}/purge_all``.

Authentication is the ``Fastly-Key`` header; ``soft_purge`` adds ``Fastly-Soft-Purge: 1``
(the object is marked stale rather than dropped, so the origin is spared a stampede; not
for purge-all, which has no soft form). Fastly cannot purge by prefix: such a request is
refused as a deterministic ``PurgeError`` (tag the content with surrogate keys instead).

Asset URLs carry the image transform as Fastly Image Optimizer query parameters
(``?width=200&quality=80&format=webp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from opsmesh_client.cdn._common import (
    absolute_url,
    batches,
    check_supported,
    join_url,
    send,
    transform_params,
    with_query,
)
from opsmesh_client.cdn.provider import (
    ImageTransform,
    PurgeError,
    PurgeLimits,
    PurgeRequest,
    PurgeScope,
)

DEFAULT_API_BASE_URL = "https://api.fastly.com"
MAX_KEYS_PER_CALL = 256
SUPPORTED = frozenset({PurgeScope.URL, PurgeScope.TAG, PurgeScope.ALL})
_IO_PARAMS = {f: f for f in ("width", "height", "quality", "format", "fit")}
# The interface's values in Fastly Image Optimizer's vocabulary where the two differ.
_IO_FIT = {"contain": "bounds", "scale-down": "bounds", "cover": "cover"}
_IO_FORMAT = {"jpeg": "jpg"}


@dataclass(frozen=True, slots=True)
class FastlySettings:
    base_url: str  # the service's public URL assets are served from
    service_id: str
    api_base_url: str = DEFAULT_API_BASE_URL  # overridden by tests to a local fake
    soft_purge: bool = False
    max_per_call: int = MAX_KEYS_PER_CALL
    timeout_s: float = 10.0


class FastlyProvider:
    def __init__(self, name: str, settings: FastlySettings, *, api_key: str) -> None:
        self._name = name
        self._settings = settings
        self._api_key = api_key
        self._limits = PurgeLimits(max_values_per_call=settings.max_per_call, supported=SUPPORTED)

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> PurgeLimits:
        return self._limits

    def __repr__(self) -> str:  # never the key
        return f"FastlyProvider({self._name!r}, service_id={self._settings.service_id!r})"

    async def purge(self, request: PurgeRequest) -> None:
        import httpx  # noqa: PLC0415  (optional dependency: the `cdn` extra)

        check_supported(self._name, SUPPORTED, request)
        if request.scope is PurgeScope.TAG:
            _check_keys(self._name, request.values)
        s = self._settings
        headers = {"Fastly-Key": self._api_key, "Accept": "application/json"}
        if s.soft_purge and request.scope is not PurgeScope.ALL:
            headers["Fastly-Soft-Purge"] = "1"
        api = s.api_base_url.rstrip("/")
        service = f"{api}/service/{quote(s.service_id, safe='')}"
        async with httpx.AsyncClient(timeout=s.timeout_s, headers=headers) as client:
            if request.scope is PurgeScope.ALL:
                await send(self._name, client, "POST", f"{service}/purge_all")
            elif request.scope is PurgeScope.URL:
                for value in request.values:
                    parts = urlsplit(absolute_url(s.base_url, value))
                    target = parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")
                    await send(self._name, client, "POST", f"{api}/purge/{target}")
            else:
                for chunk in batches(request.values, s.max_per_call):
                    if len(chunk) == 1:
                        key = quote(chunk[0], safe="")
                        await send(self._name, client, "POST", f"{service}/purge/{key}")
                    else:
                        await send(
                            self._name,
                            client,
                            "POST",
                            f"{service}/purge",
                            headers={"Surrogate-Key": " ".join(chunk)},
                        )

    def asset_url(self, path: str, *, transform: ImageTransform | None = None) -> str:
        params = [
            (k, _IO_FIT.get(v, v) if k == "fit" else _IO_FORMAT.get(v, v) if k == "format" else v)
            for k, v in transform_params(transform, _IO_PARAMS)
        ]
        return with_query(join_url(self._settings.base_url, path), params)


def _check_keys(provider: str, keys: tuple[str, ...]) -> None:
    """Surrogate keys are printable ASCII without spaces (a space separates them in the
    batch header, so a key with one would purge two other keys)."""
    for key in keys:
        if not key or not all("!" <= c <= "~" for c in key):
            raise PurgeError(
                provider,
                f"surrogate key {key[:80]!r} is not printable ASCII without spaces",
                transient=False,
            )
