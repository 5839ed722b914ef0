"""``/api/v1/findings`` and ``/api/v1/recommendations``."""

from __future__ import annotations

from aiohttp import web

from query_analyzer.api.params import as_json, bad, database_of, limit_of
from query_analyzer.bootstrap import SERVICES
from query_analyzer.core.findings import FindingKind


async def list_findings(request: web.Request) -> web.Response:
    limit, database = limit_of(request), database_of(request)
    kind = request.query.get("kind")
    if kind is not None and kind not in {k.value for k in FindingKind}:
        raise bad(f"kind must be one of {sorted(k.value for k in FindingKind)}")
    findings = request.app[SERVICES].findings
    return as_json(await findings.findings(limit=limit, kind=kind, database=database))


async def list_recommendations(request: web.Request) -> web.Response:
    limit, database = limit_of(request), database_of(request)
    flag = request.query.get("actionable", "false").lower()
    if flag not in {"true", "false", "1", "0"}:
        raise bad("actionable must be true or false")
    findings = request.app[SERVICES].findings
    return as_json(
        await findings.recommendations(
            limit=limit, database=database, actionable=flag in {"true", "1"}
        )
    )
