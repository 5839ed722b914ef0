"""``application/health+json`` documents (draft-inadarei-api-health-check-06).

``status`` is pass/warn/fail; pass and warn answer HTTP 200, fail 503. ``checks`` keys
are ``{component}:{measurement}``, each an array with one object per node.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from health_aggregator.core.policy import ServiceHealth, overall
from opsmesh.events.health import HealthStatus

MEDIA_TYPE = "application/health+json"


def http_status(status: HealthStatus) -> int:
    return 503 if status is HealthStatus.FAIL else 200


def iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat().replace("+00:00", "Z")


def fleet_document(
    services: Sequence[ServiceHealth], *, service_id: str, version: str, now: float
) -> dict[str, Any]:
    """The whole fleet: one ``{service}:instances`` check per service."""
    status = overall(services)
    doc: dict[str, Any] = {
        "status": status.value,
        "version": version,
        "serviceId": service_id,
        "description": "health of every service reporting to opsmesh",
        "checks": {
            f"{s.service}:instances": [
                {
                    "componentId": s.service,
                    "componentType": "system",
                    "observedValue": s.healthy,
                    "observedUnit": f"healthy of {s.total}",
                    "status": s.status.value,
                    "time": iso(now),
                    "output": s.output,
                    "policy": s.policy.value,
                    "reason": s.reason.value,
                }
            ]
            for s in services
        },
        "links": {"about": "/api/v1/services"},
    }
    failing = [s.service for s in services if s.status is HealthStatus.FAIL]
    if failing:
        doc["output"] = f"failing: {', '.join(failing[:20])}"
    return doc


def service_document(service: ServiceHealth, *, version: str) -> dict[str, Any]:
    """One service: a ``{check}:status`` entry per check, one object per instance."""
    checks: dict[str, list[dict[str, Any]]] = {}
    for instance in service.instances:
        for check in instance.checks:
            entry: dict[str, Any] = {
                "componentId": instance.instance,
                "componentType": "component",
                "status": check.status.value,
                "time": iso(check.reported_at),
                "critical": check.critical,
            }
            if check.output:
                entry["output"] = check.output
            checks.setdefault(f"{check.check}:status", []).append(entry)
    doc: dict[str, Any] = {
        "status": service.status.value,
        "version": version,
        "serviceId": service.service,
        "description": service.output,
        "checks": checks,
    }
    if service.status is not HealthStatus.PASS:
        doc["output"] = service.output
    return doc


def self_document(
    status: HealthStatus, checks: Iterable[tuple[str, str]], *, version: str
) -> dict[str, Any]:
    """The aggregator's own probes (live/ready): its dependencies, never the fleet's."""
    return {
        "status": status.value,
        "version": version,
        "checks": {
            f"{name}:status": [
                {
                    "componentType": "component",
                    "status": "pass" if result == "ok" else "fail",
                    **({} if result == "ok" else {"output": result}),
                }
            ]
            for name, result in checks
        },
    }
