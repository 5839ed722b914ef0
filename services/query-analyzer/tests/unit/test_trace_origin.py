"""An N+1 signal continues the newest record of its request; other traces are links."""

from __future__ import annotations

from opsmesh.tracing.context import new_trace
from query_analyzer.core.nplusone import QuerySpan
from query_analyzer.core.traces import TraceBuffer

CONTEXT = ("shop", "web")


def span(trace: str, at: float) -> QuerySpan:
    return QuerySpan(trace, None, "parent", "fp", "SELECT 1", 20.0, at)


def test_a_settled_trace_folds_the_contexts_of_its_records() -> None:
    buffer = TraceBuffer(settle_s=1.0)
    request, other = new_trace(), new_trace()
    buffer.add(span("t1", 0.0), CONTEXT, now=0.0, origin=request)
    buffer.add(span("t1", 0.1), CONTEXT, now=0.1, origin=other)
    buffer.add(span("t1", 0.2), CONTEXT, now=0.2)  # a record without a traceparent
    newest = request.child()
    buffer.add(span("t1", 0.3), CONTEXT, now=0.3, origin=newest)
    (settled,) = buffer.settled(now=5.0)
    assert settled.origin.parent == newest
    assert settled.origin.links == (other,)
