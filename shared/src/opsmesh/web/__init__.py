"""The aiohttp service kit: app factory, probes, metrics, background workers, drain."""

from opsmesh.web.app import (
    REGISTRY_KEY,
    SERVICE_KEY,
    ReadinessCheck,
    ServiceSpec,
    init_app,
    run_checks,
    run_service,
)

__all__ = [
    "REGISTRY_KEY",
    "SERVICE_KEY",
    "ReadinessCheck",
    "ServiceSpec",
    "init_app",
    "run_checks",
    "run_service",
]
