"""One W3C trace per event across the mesh: trace context carried on every Kafka record
and HTTP request, and spans exported through OpenTelemetry when configured."""

from opsmesh.tracing.context import TraceContext, new_trace, parse_traceparent, traceparent_of
from opsmesh.tracing.spans import (
    SpanKind,
    Tracing,
    context_of,
    current_trace,
    end_span,
    install,
    traced,
    tracing,
    use_trace,
)

__all__ = [
    "SpanKind",
    "TraceContext",
    "Tracing",
    "context_of",
    "current_trace",
    "end_span",
    "install",
    "new_trace",
    "parse_traceparent",
    "traced",
    "traceparent_of",
    "tracing",
    "use_trace",
]
