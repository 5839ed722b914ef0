"""``{{ "img/logo.png" | cdn_url(width=200) }}`` for Jinja templates.

``install(environment)`` adds the filter. The client's region comes from ``region=``, else
from the headers of the template context's ``request`` (Starlette's and Django's both have
case-insensitive ``headers``), else none (the default order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2

from opsmesh_client.cdn import urls
from opsmesh_client.cdn.routing import CdnRouter


def install(
    environment: jinja2.Environment,
    *,
    region_headers: Sequence[str] = urls.DEFAULT_REGION_HEADERS,
    router: CdnRouter | None = None,
) -> None:
    names = tuple(region_headers)

    @jinja2.pass_context
    def cdn_url(
        context: jinja2.runtime.Context,
        path: str,
        region: str | None = None,
        **image: Any,
    ) -> str:
        if region is None:
            request = context.get("request")
            region = urls.region_from_headers(getattr(request, "headers", None), names)
        return urls.cdn_url(str(path), region=region, router=router, **image)

    environment.filters["cdn_url"] = cdn_url
