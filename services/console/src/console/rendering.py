"""The Jinja2 environment: templates shipped in the package, HTML autoescaped."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from console.core.timefmt import age, instant


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("console", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,  # a typo in a template fails its test, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["instant"] = instant
    env.filters["age"] = age
    return env


def html(env: jinja2.Environment, name: str, status: int = 200, **context: Any) -> web.Response:
    return web.Response(
        text=env.get_template(name).render(**context), status=status, content_type="text/html"
    )
