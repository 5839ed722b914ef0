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
from opsmesh.web.bootstrap import Bootstrap, Worker

__all__ = [
    "REGISTRY_KEY",
    "SERVICE_KEY",
    "Bootstrap",
    "ReadinessCheck",
    "ServiceSpec",
    "Worker",
    "init_app",
    "run_checks",
    "run_service",
]
