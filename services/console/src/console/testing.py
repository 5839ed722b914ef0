"""In-repo fakes of the console's ports, for its tests (no runtime module imports this)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from console.upstream import UpstreamError


class FakeGroupsSource:
    """Answers the groups and pending alerts it was last given, as the alert-engine's
    API v2 and v1 would encode them, or fails as an unreachable engine does."""

    def __init__(self) -> None:
        self.body = b"[]"
        self.pending = b'{"alerts": [], "pending": []}'
        self.down = False
        self.reads = 0

    def set_groups(self, groups: Sequence[Mapping[str, object]]) -> None:
        self.body = json.dumps(list(groups)).encode()

    def set_pending(self, pending: Sequence[Mapping[str, object]]) -> None:
        self.pending = json.dumps({"alerts": [], "pending": list(pending)}).encode()

    async def groups_body(self) -> bytes:
        self.reads += 1
        if self.down:
            raise UpstreamError("alert-engine", None, "unreachable (fake)")
        return self.body

    async def pending_body(self) -> bytes:
        if self.down:
            raise UpstreamError("alert-engine", None, "unreachable (fake)")
        return self.pending


class FakeUpstreams:
    """The notifier's, the alert-engine's and query-analyzer's REST endpoints the
    deliveries page, an alert's page, the alerts page and the queries pages read, as a
    local aiohttp app answering what it was given (the shapes the services' OpenAPI
    documents declare; the console's tests check them there). ``down`` names the
    services (or single paths) that answer 503; ``replays`` records each replay with the
    bearer token it came with."""

    def __init__(self) -> None:
        self.summary: dict[str, Any] = {"window_s": 86400.0, "integrations": []}
        self.deliveries: list[dict[str, Any]] = []
        self.letters: list[dict[str, Any]] = []
        self.groups: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        # query-analyzer's answers: top fingerprints, one fingerprint, and windows.
        self.top: list[dict[str, Any]] = []
        self.query: dict[str, Any] = {}
        self.windows: list[dict[str, Any]] = []
        self.down: set[str] = set()
        self.replays: list[tuple[str, str]] = []
        self.queries: list[tuple[str, list[tuple[str, str]]]] = []
        self.write_token = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/deliveries/summary", self._summary)
        app.router.add_get("/api/v1/deliveries", self._deliveries)
        app.router.add_get("/api/v1/dead-letters", self._letters)
        app.router.add_post("/api/v1/dead-letters/{id}/replay", self._replay)
        app.router.add_get("/api/v2/alerts/groups", self._groups)
        app.router.add_get("/api/v1/alerts", self._alerts)
        app.router.add_get("/api/v1/notifications", self._notifications)
        app.router.add_get("/api/v1/alerts/{fp}/history", self._history)
        app.router.add_get("/api/v1/explain", self._explain)
        app.router.add_get("/api/v1/queries", self._top)
        app.router.add_get("/api/v1/queries/windows", self._windows)
        app.router.add_get("/api/v1/queries/{fp}", self._query)
        app.router.add_get("/api/v1/findings", self._nothing)
        app.router.add_get("/api/v1/recommendations", self._nothing)
        return app

    def _answer(self, service: str, request: web.Request, body: Any) -> web.Response:
        self.queries.append((request.path, list(request.query.items())))
        if service in self.down or request.path in self.down:
            return web.Response(status=503, text=f"{service} is down (fake)")
        return web.json_response(body)

    async def _summary(self, request: web.Request) -> web.Response:
        return self._answer("notifier", request, self.summary)

    async def _deliveries(self, request: web.Request) -> web.Response:
        keys = set(request.query.getall("idempotency_key", []))
        result = request.query.get("result")
        rows = [
            d
            for d in self.deliveries
            if (not keys or d["idempotency_key"] in keys)
            and (result is None or d["result"] == result)
            and request.query.get("receiver") in (None, d["receiver"])
        ]
        return self._answer("notifier", request, rows)

    async def _letters(self, request: web.Request) -> web.Response:
        return self._answer("notifier", request, self.letters)

    async def _replay(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token != self.write_token:
            return web.Response(status=403, text="the token lacks the write scope")
        self.replays.append((request.match_info["id"], token))
        return web.json_response({"replayed": request.match_info["id"], "topic": "t"}, status=202)

    async def _groups(self, request: web.Request) -> web.Response:
        return self._answer("alert-engine", request, self.groups)

    async def _alerts(self, request: web.Request) -> web.Response:
        # The console asks with pending_only=true: the routed alerts are left out.
        return self._answer("alert-engine", request, {"alerts": [], "pending": self.pending})

    async def _top(self, request: web.Request) -> web.Response:
        return self._answer("query-analyzer", request, self.top)

    async def _windows(self, request: web.Request) -> web.Response:
        wanted = set(request.query.getall("fingerprint", []))
        rows = [w for w in self.windows if w["fingerprint"] in wanted]
        return self._answer("query-analyzer", request, rows)

    async def _query(self, request: web.Request) -> web.Response:
        return self._answer("query-analyzer", request, self.query)

    async def _nothing(self, request: web.Request) -> web.Response:
        return self._answer("query-analyzer", request, [])

    async def _notifications(self, request: web.Request) -> web.Response:
        fp = request.query.get("fingerprint", "")
        rows = [n for n in self.notifications if fp in n["firing"] or fp in n["resolved"]]
        return self._answer("alert-engine", request, rows)

    async def _history(self, request: web.Request) -> web.Response:
        return self._answer("alert-engine", request, {"fingerprint": "", "history": []})

    async def _explain(self, request: web.Request) -> web.Response:
        return self._answer("alert-engine", request, {"routes": [], "inhibited_by": None})
