"""``/api/v1/services`` and ``/api/v1/services/{name}``: detail, and status history."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from health_aggregator.bootstrap import SERVICES, Services
from health_aggregator.core.policy import ServiceHealth, service_health


async def fresh(services: Services, name: str) -> ServiceHealth | None:
    """One service from its stored rows: current report times for the detail views."""
    if services.view.service(name) is None:
        return None
    checks = await services.store.of_service(name)
    return service_health(name, checks, services.view.policy(name))


def unknown_service(request: web.Request) -> web.Response:
    return web.json_response(
        {"error": "unknown_service", "detail": request.match_info["name"]}, status=404
    )


async def list_services(request: web.Request) -> web.Response:
    return web.json_response([_detail(s) for s in request.app[SERVICES].view.services()])


async def one_service(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    service = await fresh(services, request.match_info["name"])
    if service is None:
        return unknown_service(request)
    out = _detail(service)
    out["history"] = await services.store.history(service.service, services.history_limit)
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
