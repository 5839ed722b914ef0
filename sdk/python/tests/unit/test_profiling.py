"""Profiling through pyinstrument: how its frame tree folds into the event's functions
(pyinstrument sessions of given stacks and times, so the counts are exact), and the
client's decisions around real pyinstrument profilers of real requests' work."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable

import pytest

from opsmesh_client import trace
from opsmesh_client.client import Client
from opsmesh_client.profiling import (
    Folded,
    FunctionStats,
    MemoryTracer,
    MemoryUse,
    RequestProfiler,
    TracedMemory,
    fold,
)
from opsmesh_client.settings import load
from opsmesh_client.testing import MemoryTransports, compute_for
from opsmesh_client.wire import Kind, Record

NOW = 1_760_000_000.0
INTERVAL = 0.01
THREAD = "MainThread\x00<thread>\x00140000"
SERVE = "serve\x00/srv/server.py\x0010"
HANDLE = "handle\x00/srv/middleware.py\x0020"
RENDER = "render_page\x00/app/views.py\x0030"
QUERY = "query_orders\x00/app/views.py\x0040"
TOTALS = "compute_totals\x00/app/views.py\x0050"
RECURSE = "recurse\x00/app/tree.py\x0060"


OPEN = "begin_profile\x00/opsmesh_client/client.py\x00140"
STARTED_FROM = [THREAD, SERVE, HANDLE, OPEN]  # the middleware opened the request's profile


def folded(
    records: list[tuple[list[str], float]], limit: int = 100, start: list[str] = STARTED_FROM
) -> Folded:
    """What pyinstrument recorded (stacks root first, with their times) folded."""
    return fold(records, start, INTERVAL, limit)


def under_request(*frames: str) -> list[str]:
    return [THREAD, SERVE, HANDLE, *frames]


def by_name(functions: list[FunctionStats]) -> dict[str, tuple[int, int]]:
    return {f.function: (f.self_samples, f.total_samples) for f in functions}


def test_a_function_counts_self_when_innermost_and_total_when_on_the_stack() -> None:
    records = [(under_request(RENDER, QUERY), INTERVAL)] * 3
    records.append((under_request(TOTALS), INTERVAL))
    result = folded(records)
    assert result.samples == 4
    # The stem below the request's middleware (the thread, the server) is trimmed.
    assert by_name(result.functions) == {
        "handle": (0, 4),
        "render_page": (0, 3),
        "query_orders": (3, 3),
        "compute_totals": (1, 1),
    }
    assert result.functions[0] == FunctionStats("handle", "/srv/middleware.py", 20, 0, 4)
    top = folded(records, 2).functions
    assert [f.function for f in top] == ["handle", "query_orders"]  # ties: by their own


def test_time_counts_in_intervals_so_a_long_wait_in_one_call_weighs_its_length() -> None:
    """pyinstrument records a stack once a C call returns, with all the time it took."""
    recv = "recv\x00<built-in>\x000"
    records = [(under_request(QUERY, recv), 0.5), (under_request(TOTALS), 0.014)]
    result = folded(records)
    assert result.samples == 51  # 0.514 s of 10 ms intervals, rounded
    functions = by_name(result.functions)
    assert functions["recv"] == (50, 50)
    assert functions["query_orders"] == (0, 50)
    assert functions["compute_totals"] == (1, 1)


def test_recursion_counts_once_per_stack() -> None:
    records = [(under_request(RECURSE, RECURSE, RECURSE), INTERVAL)] * 2
    assert by_name(folded(records).functions)["recurse"] == (2, 2)


def test_time_awaiting_is_the_awaiting_functions_own() -> None:
    """As pyinstrument counts it: an ``[await]`` leaf is its parent's self time."""
    wait = "wait\x00/usr/lib/python3/asyncio/locks.py\x00200"
    records = [
        (under_request(RENDER, wait, "[await]"), 0.05),
        (under_request(RENDER), INTERVAL),
    ]
    functions = folded(records).functions
    assert by_name(functions) == {"handle": (0, 6), "render_page": (1, 6), "wait": (5, 5)}


def test_a_method_is_named_with_its_class() -> None:
    method = "total\x00/app/cart.py\x0070\x01cCart\x01l72"
    functions = folded([(under_request(method), INTERVAL)], 9)
    assert FunctionStats("Cart.total", "/app/cart.py", 70, 1, 1) in functions.functions


def test_the_threads_pseudo_frame_is_no_function_when_the_stem_stays() -> None:
    records = [([THREAD, SERVE, RENDER], INTERVAL), ([THREAD, SERVE, TOTALS], INTERVAL)]
    elsewhere = ["Thread-2\x00<thread>\x00140001"]  # no common stem: nothing trimmed
    result = folded(records, start=elsewhere)
    assert result.samples == 2
    assert set(by_name(result.functions)) == {"serve", "render_page", "compute_totals"}


def test_an_empty_profile_has_no_samples() -> None:
    assert folded([]).samples == 0
    tiny = folded([(under_request(RENDER), 0.001)])
    assert (tiny.samples, tiny.functions) == (0, [])


# -- the client, with real pyinstrument profilers ------------------------------------------


def profiling_client(made: MemoryTransports, draw: float = 0.99, **settings: object) -> Client:
    settings.setdefault("profile_interval_ms", 1)
    return Client(
        load({}, service="shop", kafka="unused:1", instance="i-1", **settings),
        transport=made,
        clock=lambda: NOW,
        start=False,
        draw=lambda: draw,
    )


def render_checkout() -> int:
    return compute_for(0.01)  # ten 1 ms intervals of work


def run_request(client: Client, duration_s: float, *, work: bool = True) -> bool:
    """A request whose work is real (profiled by pyinstrument) and whose duration, as the
    integration measures it, is ``duration_s``; whether it was profiled."""
    opened = client.begin_profile()
    if work:
        render_checkout()
    if opened is not None:
        client.end_profile(
            opened,
            route="/orders",
            method="GET",
            status=200,
            duration_s=duration_s,
            started_at=NOW,
        )
    return opened is not None


def profiles(client: Client, made: MemoryTransports) -> list[Record]:
    client.flush()
    return made.transport.of(Kind.PROFILE)


def test_profiling_is_off_unless_configured() -> None:
    made = MemoryTransports()
    client = profiling_client(made)
    assert client.profiler is None
    assert client.begin_profile() is None


def test_a_slow_request_is_sent_and_a_fast_one_is_not() -> None:
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=500)
    assert run_request(client, 0.2)  # profiled from its start: only its end tells
    run_request(client, 0.75)
    (record,) = profiles(client, made)
    body = record.body
    assert body["reason"] == "slow"
    assert body["duration_ms"] == 750.0
    assert body["interval_ms"] == 1
    assert record.key == "shop//orders"
    functions = {f["function"]: f for f in body["functions"]}
    hot = functions["compute_for"]
    assert 0 < hot["self_samples"] <= hot["total_samples"] <= body["samples"]
    assert functions["render_checkout"]["total_samples"] >= hot["total_samples"]
    assert hot["file"].endswith("opsmesh_client/testing.py")
    # Every stack passes through the function that opened the profile (the stem's end).
    assert functions["run_request"]["total_samples"] == body["samples"]
    assert "test_a_slow_request_is_sent_and_a_fast_one_is_not" not in functions


def test_a_drawn_request_is_sent_as_sampled_with_its_trace() -> None:
    made = MemoryTransports()
    client = profiling_client(made, draw=0.05, profile_sample_rate=0.1)
    token = trace.enter(trace.request_context("00-" + "a" * 32 + "-" + "b" * 16 + "-01"))
    try:
        run_request(client, 0.01)
    finally:
        trace.leave(token)
    (record,) = profiles(client, made)
    assert record.body["reason"] == "sampled"
    assert record.body["trace_id"] == "a" * 32
    assert record.traceparent is not None


def test_with_only_a_sample_rate_a_request_not_drawn_is_not_profiled() -> None:
    made = MemoryTransports()
    client = profiling_client(made, draw=0.5, profile_sample_rate=0.1)
    assert not run_request(client, 3.0)
    assert profiles(client, made) == []


def test_a_request_shorter_than_an_interval_sends_nothing() -> None:
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=1, profile_interval_ms=60_000)
    assert run_request(client, 2.0, work=False)
    assert profiles(client, made) == []


def test_without_pyinstrument_profiling_is_off_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pyinstrument", None)  # import fails as if absent
    made = MemoryTransports()
    with caplog.at_level(logging.WARNING, logger="opsmesh_client"):
        client = profiling_client(made, profile_slow_ms=100, profile_memory=True)
    assert client.profiler is None
    assert client.memory is None
    assert not run_request(client, 1.0)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "pyinstrument is not installed" in line
    assert "opsmesh-client[profiling]" in line


async def test_concurrent_requests_on_one_loop_each_get_their_own_profile() -> None:
    """The waiting request's profile holds its wait, not the other request's work that
    ran on the loop meanwhile."""
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=1)
    computed = asyncio.Event()

    async def request(route: str, coroutine: Awaitable[None]) -> None:
        opened = client.begin_profile(asynchronous=True)
        assert opened is not None
        await coroutine
        client.end_profile(
            opened, route=route, method="GET", status=200, duration_s=1.0, started_at=NOW
        )

    async def wait_for_totals() -> None:
        await computed.wait()

    async def compute_totals() -> None:
        await asyncio.sleep(0)  # the waiting request is waiting by now
        compute_for(0.01)
        computed.set()

    await asyncio.gather(
        request("/waits", wait_for_totals()), request("/computes", compute_totals())
    )
    sent = {r.body["route"]: r.body for r in profiles(client, made)}
    waits = {f["function"]: f for f in sent["/waits"]["functions"]}
    computes = {f["function"]: f for f in sent["/computes"]["functions"]}
    assert "compute_for" not in waits
    assert waits["Event.wait"]["self_samples"] > 0  # awaiting: the waiting function's own
    assert computes["compute_for"]["self_samples"] > 0


async def test_a_second_profile_in_one_task_is_refused_and_the_first_stands() -> None:
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=1)
    first = client.begin_profile(asynchronous=True)
    assert first is not None
    assert client.begin_profile(asynchronous=True) is None  # pyinstrument's one per context
    render_checkout()
    client.end_profile(
        first, route="/orders", method="GET", status=200, duration_s=1.0, started_at=NOW
    )
    (record,) = profiles(client, made)
    assert record.body["samples"] > 0


async def test_a_finished_profile_is_not_held_by_the_contexts_its_request_copied() -> None:
    """A task the request starts copies its context, which names the running profiler:
    the profiler keeps no session after its request, so nothing of it stays alive there
    (profile_memory read those records as the request's own)."""
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=1)
    opened = client.begin_profile(asynchronous=True)
    assert opened is not None
    profiler = opened.profiler
    assert profiler is not None
    child = asyncio.get_running_loop().create_task(asyncio.sleep(0))  # the context copied
    render_checkout()
    client.end_profile(
        opened, route="/orders", method="GET", status=200, duration_s=1.0, started_at=NOW
    )
    assert profiler.last_session is None
    assert opened.profiler is None
    await child
    assert len(profiles(client, made)) == 1


# -- memory ------------------------------------------------------------------------------


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
    (record,) = profiles(client, made)
    assert record.body["memory_peak_bytes"] is None
    assert record.body["memory_net_bytes"] is None
    assert profiling_client(made, profile_memory=True).memory is None  # profiling off


def test_a_profiled_request_carries_its_peak_above_its_start_and_its_net() -> None:
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=500, profile_memory=True)
    fake = FakeTracedMemory()
    client.memory = MemoryTracer(fake)
    fake.move(1_000)  # the process before the request
    opened = client.begin_profile()
    assert opened is not None
    assert opened.memory_start == 1_000
    fake.move(9_000)  # the request builds a page
    render_checkout()
    fake.move(1_500)  # and frees most of it
    client.end_profile(
        opened, route="/orders", method="GET", status=200, duration_s=0.75, started_at=NOW
    )
    (record,) = profiles(client, made)
    assert record.body["memory_peak_bytes"] == 8_000
    assert record.body["memory_net_bytes"] == 500


def test_a_fast_requests_memory_reading_is_closed_too() -> None:
    fake = FakeTracedMemory()
    made = MemoryTransports()
    client = profiling_client(made, profile_slow_ms=500, profile_memory=True)
    client.memory = MemoryTracer(fake)
    run_request(client, 0.1)  # not sent
    run_request(client, 0.1)
    assert fake.resets == 2  # each opened alone: the first was closed
    assert profiles(client, made) == []


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


def test_the_interval_must_be_positive() -> None:
    from pyinstrument import Profiler  # noqa: PLC0415

    with pytest.raises(ValueError, match="positive"):
        RequestProfiler(0, Profiler)
