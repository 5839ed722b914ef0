"""The endpoints, with Kubernetes semantics.

- ``/health/``: the fleet in ``application/health+json``; 503 when the overall is fail.
- ``/health/live/``: this process answers. Never depends on another system, and never on
  the fleet: restarting the aggregator would not fix the services it reports on.
- ``/health/ready/``: this aggregator can serve: its own Kafka, PostgreSQL and consumer
  group answer, its partitions' state is loaded and its view is warm. Other services'
  outages never make it unready; reporting them is its job.
- ``/health/check/{name}/``: one service, per check and instance; 404 if unknown.
- ``/api/v1/services`` and ``/api/v1/services/{name}``: detail, and status history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from health_aggregator.core.policy import ServiceHealth, service_health
from health_aggregator.core.render import (
    MEDIA_TYPE,
    http_status,
    self_document,
    service_document,
)
from health_aggregator.openapi import openapi_document
from health_aggregator.pipeline.view import HealthView
from health_aggregator.storage.checks import CheckStore
from opsmesh.events.health import HealthStatus
from opsmesh.web.app import ReadinessCheck, run_checks
from opsmesh.web.openapi import add_openapi_route


def _health(doc: dict[str, Any], status: int) -> web.Response:
    return web.json_response(doc, status=status, content_type=MEDIA_TYPE)


@dataclass
class HealthApi:
    view: HealthView
    store: Callable[[], CheckStore]
    readiness: Callable[[], Sequence[ReadinessCheck]]
    warmed: Callable[[], bool]
    version: str
    history_limit: int = 100

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/health/", self.fleet)
        app.router.add_get("/health/live/", self.live)
        app.router.add_get("/health/ready/", self.ready)
        app.router.add_get("/health/check/{name}/", self.check)
        app.router.add_get("/api/v1/services", self.services)
        app.router.add_get("/api/v1/services/{name}", self.service)
        add_openapi_route(app, openapi_document(self.history_limit))

    async def fleet(self, _: web.Request) -> web.Response:
        status, body = self.view.fleet()
        return web.Response(body=body, status=status, content_type=MEDIA_TYPE)

    async def live(self, _: web.Request) -> web.Response:
        return _health({"status": "pass", "version": self.version}, 200)

    async def ready(self, _: web.Request) -> web.Response:
        results = await run_checks(self.readiness())
        results.append(("partitions", "ok" if self.warmed() else "state not loaded yet"))
        results.append(("view", "ok" if self.view.loaded else "view not loaded yet"))
        ok = all(r == "ok" for _, r in results)
        status = HealthStatus.PASS if ok else HealthStatus.FAIL
        return _health(self_document(status, results, version=self.version), http_status(status))

    async def _fresh(self, name: str) -> ServiceHealth | None:
        """One service from its stored rows: current report times for the detail views."""
        if self.view.service(name) is None:
            return None
        checks = await self.store().of_service(name)
        return service_health(name, checks, self.view.policy(name))

    async def check(self, request: web.Request) -> web.Response:
        service = await self._fresh(request.match_info["name"])
        if service is None:
            return web.json_response(
                {"error": "unknown_service", "detail": request.match_info["name"]}, status=404
            )
        return _health(service_document(service, version=self.version), http_status(service.status))

    async def services(self, _: web.Request) -> web.Response:
        return web.json_response([_detail(s) for s in self.view.services()])

    async def service(self, request: web.Request) -> web.Response:
        service = await self._fresh(request.match_info["name"])
        if service is None:
            return web.json_response(
                {"error": "unknown_service", "detail": request.match_info["name"]}, status=404
            )
        out = _detail(service)
        out["history"] = await self.store().history(service.service, self.history_limit)
        return web.json_response(out)


def _detail(service: ServiceHealth) -> dict[str, Any]:
    return {
        "service": service.service,
        "status": service.status.value,
        "policy": service.policy.value,
        "reason": service.reason.value,
        "healthy": service.healthy,
        "total": service.total,
        "checks": [
            {
                "instance": c.instance,
                "check": c.check,
                "status": c.status.value,
                "critical": c.critical,
                "output": c.output,
                "reported_at": c.reported_at,
                "expires_at": c.expires_at,
            }
            for i in service.instances
            for c in i.checks
        ],
    }
