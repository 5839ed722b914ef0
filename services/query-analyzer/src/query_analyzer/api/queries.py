"""``/api/v1/queries``: top fingerprints, fingerprints' statistics over time, and one
fingerprint with its plans, findings and recommendations."""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from query_analyzer.api.params import MAX_LIMIT, as_json, bad, database_of, limit_of, since_of
from query_analyzer.bootstrap import SERVICES

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
# A page of top fingerprints asks for all of them at once.
MAX_FINGERPRINTS = 100
MAX_BUCKETS = 500
MAX_STEP_S = 7 * 86_400


async def top_queries(request: web.Request) -> web.Response:
    limit, database, since = limit_of(request), database_of(request), since_of(request)
    stats = request.app[SERVICES].stats
    return as_json(await stats.top(limit, database=database, since=since))


async def query_windows(request: web.Request) -> web.Response:
    """Per fingerprint, database and version: the last ``buckets`` buckets of ``step``
    seconds (default the last day by the hour), each with its calls, times and
    percentiles: what a trend is drawn from."""
    fingerprints = request.query.getall("fingerprint", [])
    if not 1 <= len(fingerprints) <= MAX_FINGERPRINTS:
        raise bad(f"give 1 to {MAX_FINGERPRINTS} fingerprint parameters")
    if not all(_FINGERPRINT.match(f) for f in fingerprints):
        raise bad("fingerprint must be 16 lowercase hex characters")
    step = _int_param(request, "step", 3600, 10, MAX_STEP_S)
    buckets = _int_param(request, "buckets", 24, 1, MAX_BUCKETS)
    stats = request.app[SERVICES].stats
    return as_json(
        await stats.windows(
            sorted(set(fingerprints)),
            step_s=step,
            buckets=buckets,
            database=database_of(request),
            since=since_of(request),
        )
    )


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.query.get(name, str(default)))
    except ValueError:
        raise bad(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise bad(f"{name} must be between {low} and {high}")
    return value


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
