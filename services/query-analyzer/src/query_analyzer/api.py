"""REST handlers: top queries, one fingerprint, findings, recommendations, OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from query_analyzer.core.findings import FindingKind
from query_analyzer.openapi import DOCUMENT
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.stats import QueryStats

_MAX_LIMIT = 500
# 9999-12-31T23:59:59Z, past which PostgreSQL's to_timestamp fails instead of answering.
MAX_EPOCH_S = 253_402_300_799.0
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data, enc_hook=str),
        status=status,
        content_type="application/json",
    )


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=msgspec.json.encode({"error": message}).decode(), content_type="application/json"
    )


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise _bad("limit must be an integer") from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise _bad(f"limit must be between 1 and {_MAX_LIMIT}")
    return limit


def _database(request: web.Request) -> str | None:
    database = request.query.get("database")
    if database is not None and not 1 <= len(database) <= 200:
        raise _bad("database must be 1 to 200 characters")
    if database is not None and not _storable(database):
        # PostgreSQL text holds neither NUL nor lone surrogates: no stored name has them.
        raise _bad("database must not contain NUL or unpaired surrogate characters")
    return database


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def routes(app: web.Application, pool: Callable[[], AsyncConnectionPool]) -> None:
    def stores() -> tuple[QueryStats, FindingStore]:
        return QueryStats(pool()), FindingStore(pool())

    async def top_queries(request: web.Request) -> web.Response:
        limit, database = _limit(request), _database(request)
        stats, _ = stores()
        since: float | None = None
        if "since" in request.query:
            try:
                since = float(request.query["since"])
            except ValueError:
                raise _bad("since must be epoch seconds (a number)") from None
            if not 0 <= since <= MAX_EPOCH_S:  # NaN fails this too
                raise _bad("since must be epoch seconds between 1970 and 9999")
        return _json(await stats.top(limit, database=database, since=since))

    async def one_query(request: web.Request) -> web.Response:
        fingerprint = request.match_info["fingerprint"]
        if not _FINGERPRINT.match(fingerprint):
            raise _bad("fingerprint must be 16 lowercase hex characters")
        stats, findings = stores()
        rows = await stats.one(fingerprint)
        if not rows:
            raise web.HTTPNotFound(
                text=msgspec.json.encode(
                    {"error": f"no statistics for fingerprint {fingerprint}"}
                ).decode(),
                content_type="application/json",
            )
        related = [
            f for f in await findings.findings(limit=_MAX_LIMIT) if f["fingerprint"] == fingerprint
        ]
        recs = [
            r
            for r in await findings.recommendations(limit=_MAX_LIMIT)
            if r["fingerprint"] == fingerprint
        ]
        return _json(
            {
                "fingerprint": fingerprint,
                "stats": rows,
                "plans": await findings.plans(fingerprint),
                "findings": related,
                "recommendations": recs,
            }
        )

    async def list_findings(request: web.Request) -> web.Response:
        limit, database = _limit(request), _database(request)
        _, findings = stores()
        kind = request.query.get("kind")
        if kind is not None and kind not in {k.value for k in FindingKind}:
            raise _bad(f"kind must be one of {sorted(k.value for k in FindingKind)}")
        return _json(await findings.findings(limit=limit, kind=kind, database=database))

    async def list_recommendations(request: web.Request) -> web.Response:
        limit, database = _limit(request), _database(request)
        _, findings = stores()
        flag = request.query.get("actionable", "false").lower()
        if flag not in {"true", "false", "1", "0"}:
            raise _bad("actionable must be true or false")
        return _json(
            await findings.recommendations(
                limit=limit, database=database, actionable=flag in {"true", "1"}
            )
        )

    async def openapi(_: web.Request) -> web.Response:
        return _json(DOCUMENT)

    app.router.add_get("/api/v1/queries", top_queries)
    app.router.add_get("/api/v1/queries/{fingerprint}", one_query)
    app.router.add_get("/api/v1/findings", list_findings)
    app.router.add_get("/api/v1/recommendations", list_recommendations)
    app.router.add_get("/api/v1/openapi.json", openapi)
