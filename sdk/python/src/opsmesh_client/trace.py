"""W3C trace context for the events an application sends.

Each request handled by an integration gets a span in the trace its ``traceparent`` names
(or a new trace), held in a context variable for the thread or task that serves it; every
event the request causes carries it, so query-analyzer groups a request's queries by trace
and one trace id follows the request into the mesh's alerts. When OpenTelemetry is
installed and a span is recording, its context is used instead, so the SDK joins the
application's own traces rather than starting parallel ones.
"""

from __future__ import annotations

import contextvars
import os
import random
import re
from dataclasses import dataclass

# Uniqueness, not secrecy: a seeded PRNG is much cheaper per id than the OS's source.
# Reseeded in a forked child (a pre-forking server that imported the SDK first), whose
# copy of the state would otherwise repeat its parent's and its siblings' ids.
_random = random.Random()  # noqa: S311
os.register_at_fork(after_in_child=_random.seed)

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def _hex(bits: int) -> str:
    return f"{_random.getrandbits(bits):0{bits // 4}x}"


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits: the span events of this context hang under
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        return TraceContext(self.trace_id, _hex(64), self.flags)


def new_span_id() -> str:
    return _hex(64)


def new_trace() -> TraceContext:
    return TraceContext(_hex(128), _hex(64))


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The context of a ``traceparent`` header; None when absent or invalid (W3C rules:
    version ``ff`` and all-zero ids are invalid, version 00 has no trailing fields)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE:
        return None
    if span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, flags)


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "opsmesh_client_trace", default=None
)


def current() -> TraceContext | None:
    """The context events are attached to now: OpenTelemetry's recording span if any,
    else the request span an integration opened, else None."""
    otel = _otel_context()
    return otel if otel is not None else _current.get()


def enter(context: TraceContext | None) -> contextvars.Token[TraceContext | None]:
    return _current.set(context)


def leave(token: contextvars.Token[TraceContext | None]) -> None:
    _current.reset(token)


def request_context(traceparent: str | None) -> TraceContext:
    """The span of a request: a child of its incoming ``traceparent``, or a new trace."""
    otel = _otel_context()
    if otel is not None:
        return otel
    parent = parse_traceparent(traceparent)
    return parent.child() if parent is not None else new_trace()


try:  # OpenTelemetry is optional: an application that uses it gets its spans joined.
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - depends on what the application installed
    _otel_trace = None  # type: ignore[assignment]


def _otel_context() -> TraceContext | None:
    if _otel_trace is None:
        return None
    span_context = _otel_trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return TraceContext(
        f"{span_context.trace_id:032x}",
        f"{span_context.span_id:016x}",
        f"{int(span_context.trace_flags):02x}",
    )
