"""The sampler and the client's profiling decisions, in simulated time: each ``tick`` is
one sampling period, and the stacks are real frames captured from the functions below."""

from __future__ import annotations

import gc
import sys
import threading
import weakref
from types import FrameType

from opsmesh_client import trace
from opsmesh_client.client import Client
from opsmesh_client.profiling import (
    MAX_DEPTH,
    FunctionStats,
    MemoryTracer,
    MemoryUse,
    Sampler,
    TracedMemory,
    stack_codes,
)
from opsmesh_client.settings import load
from opsmesh_client.testing import MemoryTransports
from opsmesh_client.wire import Kind

NOW = 1_760_000_000.0
THREAD = 7


def render_page() -> FrameType:
    return query_orders()


def query_orders() -> FrameType:
    return sys._getframe()


def compute_totals() -> FrameType:
    return sys._getframe()


def recurse(n: int) -> FrameType:
    return sys._getframe() if n == 0 else recurse(n - 1)


class FakeFrames:
    """What ``sys._current_frames`` would return, set by the test between ticks."""

    def __init__(self) -> None:
        self.now: dict[int, FrameType] = {}

    def __call__(self) -> dict[int, FrameType]:
        return dict(self.now)


def by_name(top: list[FunctionStats]) -> dict[str, tuple[int, int]]:
    return {f.function: (f.self_samples, f.total_samples) for f in top}


def test_a_function_counts_self_when_running_and_total_when_on_the_stack() -> None:
    frames = FakeFrames()
    sampler = Sampler(0.01, frames=frames)
    session = sampler.begin(THREAD, sampled=False)
    frames.now = {THREAD: render_page()}
    for _ in range(3):
        sampler.tick()
    frames.now = {THREAD: compute_totals()}
    sampler.tick()
    sampler.end(session)

    assert session.samples == 4
    top = by_name(session.top(100))
    assert top["query_orders"] == (3, 3)
    assert top["render_page"] == (0, 3)
    assert top["compute_totals"] == (1, 1)
    # Everything below (this test, pytest) is on the stack of every sample.
    assert top["test_a_function_counts_self_when_running_and_total_when_on_the_stack"] == (0, 4)
    assert session.top(1)[0].total_samples == 4


def test_recursion_counts_once_per_sample() -> None:
    frames = FakeFrames()
    sampler = Sampler(0.01, frames=frames)
    session = sampler.begin(THREAD, sampled=True)
    frames.now = {THREAD: recurse(5)}
    sampler.tick()
    sampler.tick()
    assert by_name(session.top(100))["recurse"] == (2, 2)


def test_only_open_sessions_threads_are_sampled() -> None:
    frames = FakeFrames()
    sampler = Sampler(0.01, frames=frames)
    frames.now = {THREAD: render_page(), THREAD + 1: compute_totals()}
    assert sampler.tick() == 0  # nothing open: nothing read
    mine = sampler.begin(THREAD, sampled=False)
    assert sampler.tick() == 1
    sampler.end(mine)
    assert sampler.tick() == 0
    assert mine.samples == 1
    assert "compute_totals" not in by_name(mine.top(100))


def test_a_stack_is_read_innermost_first_and_cut_at_its_depth_limit() -> None:
    frame = recurse(3)
    expected, current = [], frame
    while current is not None:
        expected.append(current.f_code)
        current = current.f_back
    assert stack_codes(frame) == expected[:MAX_DEPTH]
    assert [c.co_name for c in stack_codes(frame)[:5]] == [
        "recurse",
        "recurse",
        "recurse",
        "recurse",
        "test_a_stack_is_read_innermost_first_and_cut_at_its_depth_limit",
    ]
    deep = recurse(MAX_DEPTH + 10)
    assert len(stack_codes(deep)) == MAX_DEPTH
    assert {c.co_name for c in stack_codes(deep)} == {"recurse"}


def test_reading_a_stack_leaves_the_collector_as_it_was() -> None:
    assert gc.isenabled()
    stack_codes(render_page())
    assert gc.isenabled()
    gc.disable()
    try:
        stack_codes(render_page())
        assert not gc.isenabled()  # the application's choice, kept
    finally:
        gc.enable()


def test_a_thread_that_is_gone_is_skipped() -> None:
    sampler = Sampler(0.01, frames=FakeFrames())
    session = sampler.begin(THREAD, sampled=False)
    assert sampler.tick() == 0
    assert session.samples == 0


def profiling_client(made: MemoryTransports, draw: float = 0.99, **settings: object) -> Client:
    return Client(
        load({}, service="shop", kafka="unused:1", instance="i-1", **settings),
        transport=made,
        clock=lambda: NOW,
        start=False,
        draw=lambda: draw,
    )


def run_request(client: Client, duration_s: float, ticks: int = 2) -> None:
    session = client.begin_profile()
    assert session is not None
    assert client.profiler is not None
    client.profiler._frames = lambda: {threading.get_ident(): render_page()}
    for _ in range(ticks):
        client.profiler.tick()
    client.end_profile(
        session,
        route="/orders",
        method="GET",
        status=200,
        duration_s=duration_s,
        started_at=NOW,
    )


def test_profiling_is_off_unless_configured() -> None:
    made = MemoryTransports()
    client = profiling_client(made)
    assert client.profiler is None
    assert client.begin_profile() is None


def test_a_slow_request_is_sent_and_a_fast_one_is_not() -> None:
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=500)
    run_request(client, 0.2)
    run_request(client, 0.75)
    client.flush()
    profiles = made.transport.of(Kind.PROFILE)
    assert len(profiles) == 1
    body = profiles[0].body
    assert body["reason"] == "slow"
    assert body["duration_ms"] == 750.0
    assert body["samples"] == 2
    assert body["route"] == "/orders"
    assert profiles[0].key == "shop//orders"
    assert any(
        f["function"] == "query_orders" and f["self_samples"] == 2 for f in body["functions"]
    )


def test_a_drawn_request_is_sent_as_sampled_with_its_trace() -> None:
    made = MemoryTransports()
    client = profiling_client(made, draw=0.05, profile_sample_rate=0.1)
    token = trace.enter(trace.request_context("00-" + "a" * 32 + "-" + "b" * 16 + "-01"))
    try:
        run_request(client, 0.01)
    finally:
        trace.leave(token)
    client.flush()
    (record,) = made.transport.of(Kind.PROFILE)
    assert record.body["reason"] == "sampled"
    assert record.body["trace_id"] == "a" * 32
    assert record.traceparent is not None


def test_a_request_that_got_no_sample_sends_nothing() -> None:
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=1)
    run_request(client, 2.0, ticks=0)
    client.flush()
    assert made.transport.of(Kind.PROFILE) == []


def test_the_sampler_thread_samples_a_busy_request_thread() -> None:
    """The real thread and ``sys._current_frames``: waits on the condition, not a time."""
    sampler = Sampler(0.001)
    sampler.start()
    try:
        session = sampler.begin(threading.get_ident(), sampled=True)
        while True:  # busy, as a request computing; the test's timeout bounds it
            with sampler._lock:
                if session.samples >= 3:
                    break
            sum(range(1000))
        sampler.end(session)
    finally:
        sampler.stop()
    assert session.samples >= 3
    assert "test_the_sampler_thread_samples_a_busy_request_thread" in by_name(session.top(100))


class FakeTracedMemory(TracedMemory):
    """tracemalloc's readings, set by the test; the peak follows ``current`` as it moves."""

    def __init__(self) -> None:
        self.tracing = False
        self.current = 0
        self.peak = 0
        self.resets = 0

    def is_tracing(self) -> bool:
        return self.tracing

    def start(self) -> None:
        self.tracing = True

    def stop(self) -> None:
        self.tracing = False

    def reset_peak(self) -> None:
        self.resets += 1
        self.peak = self.current

    def traced(self) -> tuple[int, int]:
        return self.current, self.peak

    def move(self, to: int) -> None:
        self.current = to
        self.peak = max(self.peak, to)


def test_memory_is_measured_only_when_asked_for() -> None:
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=500)
    assert client.memory is None
    run_request(client, 0.75)
    client.flush()
    (record,) = made.transport.of(Kind.PROFILE)
    assert record.body["memory_peak_bytes"] is None
    assert record.body["memory_net_bytes"] is None
    assert profiling_client(made, profile_memory=True).memory is None  # profiling off


def test_a_profiled_request_carries_its_peak_above_its_start_and_its_net() -> None:
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=500, profile_memory=True)
    fake = FakeTracedMemory()
    client.memory = MemoryTracer(fake)
    fake.move(1_000)  # the process before the request
    session = client.begin_profile()
    assert session is not None
    assert session.memory_start == 1_000
    fake.move(9_000)  # the request builds a page
    fake.move(1_500)  # and frees most of it
    assert client.profiler is not None
    client.profiler._frames = lambda: {threading.get_ident(): render_page()}
    client.profiler.tick()
    client.end_profile(
        session, route="/orders", method="GET", status=200, duration_s=0.75, started_at=NOW
    )
    client.flush()
    (record,) = made.transport.of(Kind.PROFILE)
    assert record.body["memory_peak_bytes"] == 8_000
    assert record.body["memory_net_bytes"] == 500


def test_the_peak_is_reset_only_when_no_other_request_is_open() -> None:
    fake = FakeTracedMemory()
    tracer = MemoryTracer(fake)
    tracer.start()
    assert fake.tracing
    first = tracer.begin()
    second = tracer.begin()  # overlaps: the shared peak is not reset under the first
    assert fake.resets == 1
    fake.move(4_000)
    assert tracer.end(second) == MemoryUse(peak_bytes=4_000, net_bytes=4_000)
    fake.move(0)
    assert tracer.end(first) == MemoryUse(peak_bytes=4_000, net_bytes=0)
    tracer.begin()
    assert fake.resets == 2
    tracer.stop()
    assert not fake.tracing


def test_a_tracer_leaves_tracemalloc_to_whoever_started_it() -> None:
    fake = FakeTracedMemory()
    fake.tracing = True  # the application traces memory itself
    tracer = MemoryTracer(fake)
    tracer.start()
    tracer.stop()
    assert fake.tracing


def test_real_tracemalloc_sees_a_requests_allocation() -> None:
    tracer = MemoryTracer()
    tracer.start()
    try:
        start = tracer.begin()
        block = bytearray(4_000_000)
        del block
        use = tracer.end(start)
    finally:
        tracer.stop()
    # The block, less what the interpreter freed of its own between the two readings.
    assert 3_900_000 <= use.peak_bytes < 5_000_000
    assert use.net_bytes < 4_000_000  # freed before the end


class Page(bytearray):
    """A request's buffer that a weak reference can watch."""


def request_with_a_buffer(sampler: Sampler) -> weakref.ref[Page]:
    page = Page(1000)
    sampler.tick()  # the real sys._current_frames: this thread's frames, this one among them
    return weakref.ref(page)


def test_a_sample_keeps_no_frame_alive_once_its_request_returns() -> None:
    """The frames mapping holds the sampling thread's own frame: kept past the tick, it
    formed a cycle that held the sampled request's locals until the collector ran."""
    sampler = Sampler(0.01)
    session = sampler.begin(threading.get_ident(), sampled=True)
    collecting = gc.isenabled()
    gc.disable()
    try:
        page = request_with_a_buffer(sampler)
        assert page() is None
    finally:
        if collecting:
            gc.enable()
        sampler.end(session)
    assert session.samples == 1
