"""``cdn_url("img/logo.png", region=..., width=200)``: an asset's URL on the healthy CDN
preferred for the client's region.

The process has one router, set with ``configure(router)`` or built from the CDN file with
``configure_from_file(path)``. That file is the one ``providers_from_file`` reads, with two
optional sections beside ``providers``::

    providers: {cloudflare: {...}, fastly: {...}}
    routing: {default: [cloudflare, fastly], regions: {eu: [fastly]}, countries: {DE: eu}}
    health: {url: "http://health-aggregator:8083", service: cdn, interval_s: 1}

Without ``health`` every provider counts as healthy (routing by region only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from opsmesh_client.cdn.config import MAX_CONFIG_BYTES, CdnConfigError, provider_from_config
from opsmesh_client.cdn.health import DEFAULT_SERVICE, AggregatorHealth, HealthSource
from opsmesh_client.cdn.provider import ImageTransform
from opsmesh_client.cdn.routing import CdnRouter, RoutingPolicy

_router: CdnRouter | None = None
# The country of the client as the CDN in front of the application tells it.
DEFAULT_REGION_HEADERS = ("CloudFront-Viewer-Country", "CF-IPCountry", "Fastly-Geo-Country")
MAX_REGION_CHARS = 64


class _Headers(Protocol):
    def get(self, key: str, /) -> Any: ...


def region_from_headers(
    headers: _Headers | None, names: Sequence[str] = DEFAULT_REGION_HEADERS
) -> str | None:
    """The first of ``names`` present in ``headers`` (case-insensitive mappings, as Django's
    ``request.headers`` and Starlette's are), or None."""
    if headers is None:
        return None
    for name in names:
        value = headers.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_REGION_CHARS]
    return None


def configure(router: CdnRouter | None) -> None:
    """Set (or, with None, clear) the router ``cdn_url`` uses."""
    global _router  # noqa: PLW0603  (the process's one router, set at start-up)
    _router = router


def current_router() -> CdnRouter:
    if _router is None:
        raise RuntimeError(
            "no CDN router: call opsmesh_client.cdn.urls.configure(...) or "
            "configure_from_file(...) at start-up"
        )
    return _router


def router_from_config(
    document: Mapping[str, Any], *, env: Mapping[str, str] | None = None, start: bool = True
) -> CdnRouter:
    """The router a CDN file's content describes; its health poller started if ``start``."""
    providers_section = document.get("providers")
    if not isinstance(providers_section, Mapping) or not providers_section:
        raise CdnConfigError("providers: expected a mapping of name -> configuration")
    providers = [provider_from_config(str(n), c, env=env) for n, c in providers_section.items()]
    names = [p.name for p in providers]
    routing = document.get("routing", {})
    if not isinstance(routing, Mapping):
        raise CdnConfigError("routing: expected a mapping")
    policy = RoutingPolicy.from_config(routing, names)
    health: HealthSource | None = None
    section = document.get("health")
    if section is not None:
        if not isinstance(section, Mapping) or not isinstance(section.get("url"), str):
            raise CdnConfigError("health: expected a mapping with the aggregator's url")
        unknown = set(section) - {"url", "service", "interval_s", "timeout_s"}
        if unknown:
            raise CdnConfigError(f"health: unknown keys {', '.join(sorted(unknown))}")
        poller = AggregatorHealth(
            section["url"],
            service=str(section.get("service", DEFAULT_SERVICE)),
            interval_s=float(section.get("interval_s", 1.0)),
            timeout_s=float(section["timeout_s"]) if "timeout_s" in section else None,
        )
        health = poller.start() if start else poller
    return CdnRouter(providers, policy, health)


def configure_from_file(
    path: str | Path, *, env: Mapping[str, str] | None = None, start: bool = True
) -> CdnRouter:
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) > MAX_CONFIG_BYTES:
        raise CdnConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    if path.suffix.lower() == ".json":
        document = json.loads(raw)
    else:
        import yaml  # noqa: PLC0415  (optional dependency: the `cdn` extra)

        document = yaml.safe_load(raw)
    if not isinstance(document, Mapping):
        raise CdnConfigError(f"{path}: expected a mapping with providers")
    router = router_from_config(document, env=env, start=start)
    configure(router)
    return router


def transform_from(
    *,
    width: int | None = None,
    height: int | None = None,
    quality: int | None = None,
    format: str | None = None,
    fit: str | None = None,
) -> ImageTransform | None:
    if width is None and height is None and quality is None and format is None and fit is None:
        return None
    return ImageTransform(width=width, height=height, quality=quality, format=format, fit=fit)


def cdn_url(
    path: str,
    *,
    region: str | None = None,
    transform: ImageTransform | None = None,
    width: int | None = None,
    height: int | None = None,
    quality: int | None = None,
    format: str | None = None,
    fit: str | None = None,
    router: CdnRouter | None = None,
) -> str:
    """``path`` on the healthy provider preferred for ``region`` (a country code or a
    region name of the routing policy); image parameters either as ``transform`` or one by
    one."""
    if transform is None:
        transform = transform_from(
            width=width, height=height, quality=quality, format=format, fit=fit
        )
    return (router or current_router()).url(path, region=region, transform=transform)
