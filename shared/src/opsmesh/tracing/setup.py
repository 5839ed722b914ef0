"""Configure the process's tracing from the standard OpenTelemetry environment.

Export is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
is set, unless ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Then spans go
through the SDK's batch processor (``OTEL_BSP_*``: a bounded queue, spans beyond it
dropped) to the OTLP/HTTP exporter (``OTEL_EXPORTER_OTLP_*``: endpoint, headers,
timeout, compression); the sampler follows ``OTEL_TRACES_SAMPLER`` (default: parent
based, always on), and the resource ``OTEL_RESOURCE_ATTRIBUTES``, with ``service.name``
the service's name unless ``OTEL_SERVICE_NAME`` says otherwise. Only the
``http/protobuf`` protocol is shipped: ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` is refused at
start rather than exporting to a port that does not speak it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from opsmesh.settings import SettingsError
from opsmesh.tracing.spans import Tracing, install

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


def export_configured(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(env.get(TRACES_ENDPOINT, "").strip() or env.get(ENDPOINT, "").strip())


def _check_protocol(env: Mapping[str, str]) -> None:
    for name in _PROTOCOLS:
        value = env.get(name, "").strip()
        if value:
            if value != "http/protobuf":
                raise SettingsError(
                    f"{name}={value} is not supported: opsmesh exports OTLP over"
                    " http/protobuf (a collector's port 4318)"
                )
            return


def provider_for(
    service: str, env: Mapping[str, str], exporter: SpanExporter, *, batch: bool = True
) -> TracerProvider:
    attributes = {} if env.get("OTEL_SERVICE_NAME", "").strip() else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(attributes))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def configure_tracing(service: str, env: Mapping[str, str] | None = None) -> Tracing:
    """Install the process's tracing: exporting over OTLP when the environment asks for
    it, disabled (nothing recorded, contexts only carried) otherwise."""
    env = os.environ if env is None else env
    if not export_configured(env):
        tracing = Tracing()
    else:
        _check_protocol(env)
        # Imported only when exporting: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        tracing = Tracing(provider_for(service, env, OTLPSpanExporter()))
    install(tracing)
    return tracing
