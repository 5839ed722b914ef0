"""The notifier's 4xx answers in the kit's error shape (``opsmesh.web.openapi.ERROR_SCHEMA``):
``{"error": <reason>, "detail": <what was wrong>}``."""

from __future__ import annotations

import json

from aiohttp import web


def refuse(status: type[web.HTTPError], reason: str, detail: str) -> web.HTTPError:
    return status(
        text=json.dumps({"error": reason, "detail": detail}), content_type="application/json"
    )


def bad_parameter(detail: str) -> web.HTTPError:
    return refuse(web.HTTPBadRequest, "bad_parameter", detail)
