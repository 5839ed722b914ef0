"""``/api/v1/queries``: top fingerprints, and one fingerprint with its plans, findings and
recommendations."""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from query_analyzer.api.params import MAX_LIMIT, as_json, bad, database_of, limit_of, since_of
from query_analyzer.bootstrap import SERVICES

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


async def top_queries(request: web.Request) -> web.Response:
    limit, database, since = limit_of(request), database_of(request), since_of(request)
    stats = request.app[SERVICES].stats
    return as_json(await stats.top(limit, database=database, since=since))


async def one_query(request: web.Request) -> web.Response:
    fingerprint = request.match_info["fingerprint"]
    if not _FINGERPRINT.match(fingerprint):
        raise bad("fingerprint must be 16 lowercase hex characters")
    services = request.app[SERVICES]
    rows = await services.stats.one(fingerprint)
    if not rows:
        raise web.HTTPNotFound(
            text=msgspec.json.encode(
                {"error": f"no statistics for fingerprint {fingerprint}"}
            ).decode(),
            content_type="application/json",
        )
    findings = services.findings
    related = [
        f for f in await findings.findings(limit=MAX_LIMIT) if f["fingerprint"] == fingerprint
    ]
    recs = [
        r
        for r in await findings.recommendations(limit=MAX_LIMIT)
        if r["fingerprint"] == fingerprint
    ]
    return as_json(
        {
            "fingerprint": fingerprint,
            "stats": rows,
            "plans": await findings.plans(fingerprint),
            "findings": related,
            "recommendations": recs,
        }
    )
