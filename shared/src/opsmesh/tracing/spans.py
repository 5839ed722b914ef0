"""Spans through the OpenTelemetry SDK when export is configured, and none otherwise.

The kit keeps the current trace context in its own context variable (``use_trace``,
``current_trace``): set per HTTP request by the web kit's middleware and per delivery by
the notifier, read by the producer and the HTTP client middleware. With export off the
context is only carried: a produced record or outgoing request gets the context it was
given, unchanged, as OpenTelemetry's no-op tracer passes it on (the next recorded span's
parent is then the last one recorded, not a span that was never exported). With export
on, each send, request and delivery is a span whose context travels on instead.

``tracing()`` is the process's ``Tracing``, installed once at start
(``opsmesh.tracing.setup.configure_tracing``): like OpenTelemetry's global tracer
provider, one per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import trace as otel
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from opsmesh.tracing.context import TraceContext, new_trace

__all__ = [
    "Span",
    "SpanKind",
    "Tracing",
    "context_of",
    "current_trace",
    "end_span",
    "install",
    "traced",
    "tracing",
    "use_trace",
]

AttributeValue = str | bool | int | float
Attributes = Mapping[str, AttributeValue]

_current: ContextVar[TraceContext | None] = ContextVar("opsmesh_trace", default=None)
_ROOT = Context()  # an explicit empty context: a span given no parent is a root


def current_trace() -> TraceContext | None:
    """The trace context of the work in progress (an HTTP request, a delivery), or None."""
    return _current.get()


@contextmanager
def use_trace(trace: TraceContext | None) -> Iterator[None]:
    """Make ``trace`` the current context for the block (None: no current context)."""
    token = _current.set(trace)
    try:
        yield
    finally:
        _current.reset(token)


def _span_context(trace: TraceContext) -> SpanContext:
    return SpanContext(
        int(trace.trace_id, 16),
        int(trace.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(trace.flags, 16)),
    )


def context_of(span: Span) -> TraceContext:
    """The ``TraceContext`` a span's children continue."""
    c = span.get_span_context()
    return TraceContext(f"{c.trace_id:032x}", f"{c.span_id:016x}", f"{int(c.trace_flags):02x}")


def end_span(span: Span, error: BaseException | str | None = None) -> None:
    """End ``span``; an error sets its status and ``error.type`` (the class name only:
    exception messages may carry URLs with tokens, and spans leave the process)."""
    if error is not None:
        kind = error if isinstance(error, str) else type(error).__qualname__
        span.set_attribute("error.type", kind)
        span.set_status(Status(StatusCode.ERROR))
    span.end()


class Tracing:
    """Starts spans through ``provider`` (an SDK ``TracerProvider``), or is disabled."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("opsmesh") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @property
    def provider(self) -> TracerProvider | None:
        return self._provider

    def start(
        self,
        name: str,
        *,
        kind: SpanKind,
        parent: TraceContext | None,
        links: Sequence[TraceContext] = (),
        attributes: Attributes | None = None,
    ) -> Span:
        """A started span, child of ``parent`` (a root without one); end it with
        ``end_span``. Only when ``enabled``."""
        if self._tracer is None:
            raise RuntimeError("tracing is not enabled")
        context = (
            otel.set_span_in_context(NonRecordingSpan(_span_context(parent)), _ROOT)
            if parent is not None
            else _ROOT
        )
        return self._tracer.start_span(
            name,
            context=context,
            kind=kind,
            links=[Link(_span_context(link)) for link in links] or None,
            attributes=dict(attributes) if attributes else None,
        )

    def shutdown(self, timeout_s: float = 2.0) -> None:
        """Export what is queued and stop exporting, within ``timeout_s``: with the
        collector gone the exporter would wait out its own timeouts and retries, and a
        SIGTERM with it. Spans not exported by then are dropped."""
        provider = self._provider
        if provider is None:
            return
        done = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
        done.start()
        done.join(timeout_s)


_tracing = Tracing()


def tracing() -> Tracing:
    """The process's tracing (disabled unless ``configure_tracing`` installed one)."""
    return _tracing


def install(new: Tracing) -> Tracing:
    """Make ``new`` the process's tracing; returns the one it replaces."""
    global _tracing
    old, _tracing = _tracing, new
    return old


@contextmanager
def traced(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: TraceContext | None = None,
    links: Sequence[TraceContext] = (),
    attributes: Attributes | None = None,
) -> Iterator[TraceContext]:
    """The block as the current context: a span named ``name`` when spans are exported,
    else ``parent`` itself (a new trace without one). Yields the context it made current."""
    tracer = _tracing
    if not tracer.enabled:
        context = parent or new_trace()
        with use_trace(context):
            yield context
        return
    span = tracer.start(name, kind=kind, parent=parent, links=links, attributes=attributes)
    context = context_of(span)
    try:
        with use_trace(context):
            yield context
    except BaseException as exc:
        end_span(span, exc)
        raise
    end_span(span)
