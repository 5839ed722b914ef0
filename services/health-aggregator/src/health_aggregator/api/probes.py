"""The probe endpoints, with Kubernetes semantics.

- ``/health/``: the fleet in ``application/health+json``; 503 when the overall is fail.
- ``/health/live/``: this process answers. Never depends on another system, and never on
  the fleet: restarting the aggregator would not fix the services it reports on.
- ``/health/ready/``: this aggregator can serve: its own Kafka, PostgreSQL and consumer
  group answer, its partitions' state is loaded and its view is warm. Other services'
  outages never make it unready; reporting them is its job.
- ``/health/check/{name}/``: one service, per check and instance; 404 if unknown.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from health_aggregator.api.services import fresh, unknown_service
from health_aggregator.bootstrap import SERVICES
from health_aggregator.core.render import MEDIA_TYPE, http_status, self_document, service_document
from opsmesh.events.health import HealthStatus
from opsmesh.web.app import run_checks


def _health(doc: dict[str, Any], status: int) -> web.Response:
    return web.json_response(doc, status=status, content_type=MEDIA_TYPE)


async def fleet(request: web.Request) -> web.Response:
    status, body = request.app[SERVICES].view.fleet()
    return web.Response(body=body, status=status, content_type=MEDIA_TYPE)


async def live(request: web.Request) -> web.Response:
    return _health({"status": "pass", "version": request.app[SERVICES].version}, 200)


async def ready(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    results = await run_checks(services.readiness())
    results.append(("partitions", "ok" if services.stage.warmed else "state not loaded yet"))
    results.append(("view", "ok" if services.view.loaded else "view not loaded yet"))
    ok = all(r == "ok" for _, r in results)
    status = HealthStatus.PASS if ok else HealthStatus.FAIL
    doc = self_document(status, results, version=services.version)
    return _health(doc, http_status(status))


async def check(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    service = await fresh(services, request.match_info["name"])
    if service is None:
        return unknown_service(request)
    return _health(service_document(service, version=services.version), http_status(service.status))
