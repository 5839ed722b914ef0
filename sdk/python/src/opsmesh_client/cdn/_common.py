"""What every adapter shares: batching within a per-call limit, classing failures as
transient or deterministic, and appending query parameters to an asset URL.

httpx is imported lazily (by the adapters that speak HTTP), so importing the package costs
nothing for an application that only renders URLs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from opsmesh_client.cdn.provider import ImageTransform, PurgeError, PurgeRequest, PurgeScope

if TYPE_CHECKING:
    import httpx

# 408 (request timeout), 425 (too early), 429 (rate limited) and every 5xx may succeed if
# sent again later; any other 4xx will fail the same way every time.
_TRANSIENT_4XX = frozenset({408, 425, 429})
# How much of a provider's error body goes into a PurgeError's reason (and so into logs
# and dead letters): enough to say why, never a whole page.
MAX_REASON_CHARS = 300


def batches(values: Sequence[str], size: int) -> Iterator[tuple[str, ...]]:
    """``values`` in order, ``size`` at a time (the last batch may be shorter)."""
    for start in range(0, len(values), size):
        yield tuple(values[start : start + size])


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in _TRANSIENT_4XX


def status_error(provider: str, status: int, body: str) -> PurgeError:
    snippet = " ".join(body.split())[:MAX_REASON_CHARS]
    return PurgeError(provider, f"HTTP {status}: {snippet}", transient=is_transient_status(status))


def unsupported(provider: str, request: PurgeRequest) -> PurgeError:
    return PurgeError(
        provider, f"purge by {request.scope} is not supported by this provider", transient=False
    )


def check_supported(provider: str, supported: frozenset[PurgeScope], request: PurgeRequest) -> None:
    if request.scope not in supported:
        raise unsupported(provider, request)


def transport_error(provider: str, exc: Exception) -> PurgeError:
    """A request that got no HTTP answer (timeout, refused, reset): worth retrying."""
    return PurgeError(provider, f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS], transient=True)


async def send(
    provider: str,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    **kwargs: object,
) -> httpx.Response:
    """One request; a non-2xx answer or no answer becomes a classed ``PurgeError``."""
    import httpx  # noqa: PLC0415  (optional dependency: the `cdn` extra)

    try:
        response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.TransportError as exc:  # timeouts, connection errors, protocol errors
        raise transport_error(provider, exc) from exc
    if not response.is_success:
        raise status_error(provider, response.status_code, response.text)
    return response


def join_url(base_url: str, path: str) -> str:
    """``base_url`` + ``path`` with exactly one slash between them; ``path`` is
    percent-encoded except for its slashes (a path already encoded is left as it is)."""
    return f"{base_url.rstrip('/')}/{quote(path.lstrip('/'), safe='/%:@!$&()*+,;=~-._')}"


def transform_params(
    transform: ImageTransform | None, names: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The transform's set fields as (parameter, value), named through ``names``
    (field → parameter); a field ``names`` leaves out is not rendered."""
    if transform is None:
        return []
    out: list[tuple[str, str]] = []
    for field_name in ("width", "height", "quality", "format", "fit"):
        value = getattr(transform, field_name)
        if value is not None and field_name in names:
            out.append((names[field_name], str(value)))
    return out


def with_query(url: str, params: Sequence[tuple[str, str]]) -> str:
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def absolute_url(base_url: str, value: str) -> str:
    """A purge value as a full URL: an absolute URL stays as it is; anything else is an
    asset path, as given to ``asset_url``, under ``base_url``."""
    if value.startswith(("http://", "https://")):
        return value
    return join_url(base_url, value)


def url_path(base_url: str, value: str) -> str:
    """A purge value as the path (and query) the CDN caches it under."""
    parts = urlsplit(absolute_url(base_url, value))
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
