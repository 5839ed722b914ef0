"""The thin entry point every service's ``__main__`` calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from opsmesh.logging import configure_logging, get_logger
from opsmesh.runtime import tune_gc
from opsmesh.settings import CommonSettings, load_settings
from opsmesh.tracing.setup import configure_tracing
from opsmesh.web.app import run_service
from opsmesh.web.connections import ConnectionLimits

# aiohttp waits this long for open HTTP requests; the rest of the budget drains workers.
HTTP_SHUTDOWN_S = 2.0
# After the service stopped: the spans still queued get this long to reach the collector.
TRACES_FLUSH_S = 2.0


S = TypeVar("S", bound=CommonSettings)


def serve(service: str, settings_type: type[S], build: Callable[[S], web.Application]) -> None:
    settings = load_settings(settings_type)
    configure_logging(service, settings.log_level)
    tracer = configure_tracing(service)  # OTEL_* from the environment; off without them
    port: int = getattr(settings, "http_port")  # noqa: B009 - every service setting has one
    get_logger(__name__).info(
        "starting", port=port, kafka=settings.kafka_bootstrap, span_export=tracer.enabled
    )
    app = build(settings)
    tune_gc()
    status = run_service(
        app,
        host=settings.http_host,
        port=port,
        shutdown_timeout_s=HTTP_SHUTDOWN_S,
        limits=ConnectionLimits(
            max_connections=settings.http_max_connections,
            keepalive_timeout_s=settings.http_keepalive_timeout_s,
            header_timeout_s=settings.http_header_timeout_s,
            request_timeout_s=settings.http_request_timeout_s,
        ),
    )
    tracer.shutdown(TRACES_FLUSH_S)
    if status:
        raise SystemExit(int(status))
