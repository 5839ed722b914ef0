"""Traces are read for N+1 runs once they went quiet, across batches, within a bound."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from opsmesh_dev.testing.clock import FakeClock
from query_analyzer.core.nplusone import QuerySpan, detect
from query_analyzer.core.traces import TraceBuffer
from query_analyzer.pipeline.signals import MemorySignalSink
from query_analyzer.pipeline.stats_stage import StatsStage

CONTEXT = ("shop", "web")


def span(trace: str, fingerprint: str, at: float) -> QuerySpan:
    return QuerySpan(trace, None, "parent", fingerprint, fingerprint, 20.0, at)


def test_a_request_split_over_batches_is_read_whole_once_it_went_quiet() -> None:
    buffer = TraceBuffer(settle_s=5.0)
    buffer.add(span("t1", "posts", 0.0), CONTEXT, now=100.0)
    for i in range(3):
        buffer.add(span("t1", "authors", 1.0 + i), CONTEXT, now=100.0)
    assert buffer.settled(now=104.0) == []
    for i in range(3):  # the next consumer batch
        buffer.add(span("t1", "authors", 4.0 + i), CONTEXT, now=103.0)
    assert buffer.settled(now=107.9) == [], "quiet for less than settle_s since its last span"
    (trace,) = buffer.settled(now=108.0)
    assert (trace.trace_id, trace.context, len(trace.spans)) == ("t1", CONTEXT, 7)
    (found,) = detect(trace.spans)
    assert found.repeats == 6, "a per-batch reading would have seen runs of 3"
    assert len(buffer) == 0


def test_traces_settle_in_order_of_their_last_span() -> None:
    buffer = TraceBuffer(settle_s=1.0)
    buffer.add(span("a", "x", 0), CONTEXT, now=0.0)
    buffer.add(span("b", "x", 0), CONTEXT, now=0.5)
    buffer.add(span("a", "y", 1), CONTEXT, now=1.0)
    assert [t.trace_id for t in buffer.settled(now=1.6)] == ["b"]
    assert [t.trace_id for t in buffer.settled(now=2.0)] == ["a"]


def test_beyond_the_bound_the_quietest_traces_are_read_early() -> None:
    buffer = TraceBuffer(settle_s=60.0, max_spans=3)
    for i, trace in enumerate("abcd"):
        buffer.add(span(trace, "x", i), CONTEXT, now=float(i))
    assert [t.trace_id for t in buffer.settled(now=4.0)] == ["a"]
    assert len(buffer) == 3


def test_taken_traces_can_be_put_back_when_their_findings_were_not_stored() -> None:
    buffer = TraceBuffer(settle_s=1.0)
    buffer.add(span("a", "x", 0), CONTEXT, now=0.0)
    buffer.add(span("b", "x", 0), CONTEXT, now=5.0)
    taken = buffer.settled(now=2.0)
    buffer.restore(taken)
    assert len(buffer) == 2
    assert [t.trace_id for t in buffer.settled(now=10.0)] == ["a", "b"]


async def test_the_consumer_reads_the_trace_buffer_it_is_given() -> None:
    """QUERY_ANALYZER_TRACE_SETTLE_S reaches the stage: an empty buffer (len 0) was
    replaced by a default one (settle 5 s), so the setting was silently ignored."""
    clock = FakeClock()
    buffer = TraceBuffer(settle_s=0.5)
    unused: Any = None  # a quiet single-span trace touches no storage
    stage = StatsStage(
        pool=unused,
        stats=unused,
        findings=unused,
        signals=MemorySignalSink(),
        consumer="unit",
        registry=CollectorRegistry(),
        clock=clock,
        traces=buffer,
    )
    buffer.add(span("t1", "posts", 0.0), CONTEXT, now=clock.now())
    clock.advance(1.0)
    await stage.handle([])
    assert len(buffer) == 0, "the stage read the quiet trace from the buffer it was given"
