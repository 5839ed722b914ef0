"""``{% cdn_url "img/logo.png" width=200 %}``: the asset on the healthy CDN preferred for
the requesting client's region (from the request's headers; ``region=`` overrides)."""

from __future__ import annotations

from typing import Any

from django import template

from opsmesh_client.cdn import urls

register = template.Library()


def _region_headers() -> tuple[str, ...]:
    from django.conf import settings  # noqa: PLC0415

    if settings.configured:
        names = getattr(settings, "OPSMESH_CDN_REGION_HEADERS", None)
        if names:
            return tuple(names)
    return urls.DEFAULT_REGION_HEADERS


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def cdn_url(
    context: template.Context,
    path: str,
    *,
    region: str | None = None,
    width: Any = None,
    height: Any = None,
    quality: Any = None,
    format: str | None = None,
    fit: str | None = None,
) -> str:
    if region is None:
        request = context.get("request")
        region = urls.region_from_headers(getattr(request, "headers", None), _region_headers())
    return urls.cdn_url(
        str(path),
        region=region,
        width=_int(width),
        height=_int(height),
        quality=_int(quality),
        format=format or None,
        fit=fit or None,
    )


# Registered by call, not as a decorator: Django has no types, and mypy would take the
# decorated function as untyped.
register.simple_tag(cdn_url, takes_context=True)
