"""What the read endpoints share: JSON bodies, 400s with a reason, query parameters."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

MAX_LIMIT = 500
# 9999-12-31T23:59:59Z, past which PostgreSQL's to_timestamp fails instead of answering.
MAX_EPOCH_S = 253_402_300_799.0


def as_json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data, enc_hook=str),
        status=status,
        content_type="application/json",
    )


def bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=msgspec.json.encode({"error": message}).decode(), content_type="application/json"
    )


def limit_of(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise bad("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise bad(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def database_of(request: web.Request) -> str | None:
    database = request.query.get("database")
    if database is not None and not 1 <= len(database) <= 200:
        raise bad("database must be 1 to 200 characters")
    if database is not None and not _storable(database):
        # PostgreSQL text holds neither NUL nor lone surrogates: no stored name has them.
        raise bad("database must not contain NUL or unpaired surrogate characters")
    return database


def since_of(request: web.Request) -> float | None:
    if "since" not in request.query:
        return None
    try:
        since = float(request.query["since"])
    except ValueError:
        raise bad("since must be epoch seconds (a number)") from None
    if not 0 <= since <= MAX_EPOCH_S:  # NaN fails this too
        raise bad("since must be epoch seconds between 1970 and 9999")
    return since


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
