"""Cloudflare through its official Python SDK (the ``cdn-cloudflare`` extra: ``cloudflare``).

Purges go to ``POST /zones/{zone_id}/purge_cache`` with ``files`` (URL), ``prefixes``,
``tags`` or ``purge_everything``. Cloudflare's documented limit is 100 values per request
on the Free, Pro and Business plans and 500 on Enterprise (``max_per_call``); purge by
prefix and by tag is available on every plan. A prefix is sent as Cloudflare expects it,
host and path without the scheme. The SDK's own retries are off: the caller (the mesh's
purge worker, or ``purge_everywhere``) retries transient failures with its own bound.

Asset URLs with an image transform use Cloudflare Images' URL format:
``https://<zone host>/cdn-cgi/image/width=200,quality=80,format=webp/<path>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opsmesh_client.cdn._common import (
    MAX_REASON_CHARS,
    absolute_url,
    batches,
    is_transient_status,
    join_url,
    transform_params,
    transport_error,
)
from opsmesh_client.cdn.provider import (
    ImageTransform,
    PurgeError,
    PurgeLimits,
    PurgeRequest,
    PurgeScope,
)

if TYPE_CHECKING:
    from cloudflare import AsyncCloudflare

DEFAULT_API_BASE_URL = "https://api.cloudflare.com/client/v4"
_IMAGE_OPTIONS = {f: f for f in ("width", "height", "quality", "format", "fit")}


@dataclass(frozen=True, slots=True)
class CloudflareSettings:
    base_url: str  # the zone's public URL assets are served from
    zone_id: str
    api_base_url: str = DEFAULT_API_BASE_URL  # overridden by tests to a local fake
    max_per_call: int = 100
    timeout_s: float = 10.0


class CloudflareProvider:
    def __init__(self, name: str, settings: CloudflareSettings, *, api_token: str) -> None:
        self._name = name
        self._settings = settings
        self._api_token = api_token
        self._limits = PurgeLimits(max_values_per_call=settings.max_per_call)

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> PurgeLimits:
        return self._limits

    def __repr__(self) -> str:  # never the token
        return f"CloudflareProvider({self._name!r}, zone_id={self._settings.zone_id!r})"

    def _client(self) -> AsyncCloudflare:
        from cloudflare import AsyncCloudflare  # noqa: PLC0415  (optional dependency)

        return AsyncCloudflare(
            api_token=self._api_token,
            base_url=self._settings.api_base_url,
            timeout=self._settings.timeout_s,
            max_retries=0,
        )

    async def purge(self, request: PurgeRequest) -> None:
        import cloudflare  # noqa: PLC0415  (optional dependency)

        zone = self._settings.zone_id
        base = self._settings.base_url
        async with self._client() as client:
            # The raw response: Cloudflare's envelope says `success`, which the SDK's
            # parsed result drops (a 200 with `success: false` would pass for a purge).
            purge = client.cache.with_raw_response.purge
            try:
                if request.scope is PurgeScope.ALL:
                    self._check(await (await purge(zone_id=zone, purge_everything=True)).json())
                    return
                for chunk in batches(request.values, self._settings.max_per_call):
                    if request.scope is PurgeScope.URL:
                        files = [absolute_url(base, v) for v in chunk]
                        raw = await purge(zone_id=zone, files=files)
                    elif request.scope is PurgeScope.PREFIX:
                        prefixes = [_prefix(absolute_url(base, v)) for v in chunk]
                        raw = await purge(zone_id=zone, prefixes=prefixes)
                    else:
                        raw = await purge(zone_id=zone, tags=list(chunk))
                    self._check(await raw.json())
            except cloudflare.APIStatusError as exc:
                raise PurgeError(
                    self._name,
                    f"HTTP {exc.status_code}: {_errors(exc.body)}",
                    transient=is_transient_status(exc.status_code),
                ) from exc
            except cloudflare.APIConnectionError as exc:  # timeouts too
                raise transport_error(self._name, exc) from exc
            except (cloudflare.APIResponseValidationError, ValueError) as exc:  # not JSON
                # e.g. a proxy's error page in front of the API: worth another try
                raise PurgeError(
                    self._name, "unexpected answer, not the v4 envelope", transient=True
                ) from exc

    def _check(self, envelope: object) -> None:
        if not isinstance(envelope, dict) or envelope.get("success") is not True:
            raise PurgeError(self._name, f"not accepted: {_errors(envelope)}", transient=False)

    def asset_url(self, path: str, *, transform: ImageTransform | None = None) -> str:
        url = join_url(self._settings.base_url, path)
        options = transform_params(transform, _IMAGE_OPTIONS)
        if not options:
            return url
        parts = urlsplit(url)
        rendered = ",".join(f"{k}={v}" for k, v in options)
        return f"{parts.scheme}://{parts.netloc}/cdn-cgi/image/{rendered}{parts.path}"


def _prefix(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def _errors(body: object) -> str:
    """The messages of Cloudflare's error envelope (``{"success": false, "errors": [...]}``)."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        messages = [
            f"{e.get('code')} {e.get('message')}" for e in body["errors"] if isinstance(e, dict)
        ]
        if messages:
            return "; ".join(messages)[:MAX_REASON_CHARS]
    return str(body)[:MAX_REASON_CHARS]
