"""Request profiling: a statistical stack sampler on its own thread.

Every ``interval_s`` the sampler reads the current frame of each thread that is serving a
profiled request (``sys._current_frames``) and counts, per function, the samples that had
it on the stack (``total``) and those that caught it running itself (``self``). When the
request ends the client keeps the profile if the request was slow (at least
``profile_slow_ms``) or drawn into the ``profile_sample_rate`` sample, and sends it as a
``ProfileRecorded``.

Why a sampler of our own rather than pyinstrument (which the issue names): pyinstrument
installs a profile function in the profiled thread, called on every Python call and
return; to catch every slow request, every request has to be profiled from its start
(slowness is known only at its end), so the request threads would pay that per call. Here
the request thread pays a dictionary insert at its start and one removal at its end; the
sampling work is done on the sampler's thread, once per interval, only while requests are
open. And it needs no dependency.

Memory (``profile_memory``, opt-in): ``MemoryTracer`` runs ``tracemalloc`` and gives each
profiled request the peak of traced memory above its starting level and its net change.
tracemalloc traces the whole process and slows every allocation while it runs (hence
off by default), and its peak is process-wide: the peak is reset when a request opens with
no other open, so a request alone gets its own figures, while requests that overlap share
the peak, and each one's figures also hold what the others allocated meanwhile.

A limit: samples are taken per thread. Under asyncio every request of a loop shares its
thread, so a request's profile also holds what other requests ran on the loop while it
was open; for a threaded server (Django under WSGI) a profile is the request's own.
"""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, repeat, takewhile
from operator import attrgetter
from types import CodeType, FrameType

MAX_DEPTH = 256  # deeper stacks are counted from their innermost frames
Frames = Callable[[], Mapping[int, FrameType]]


_CODE = attrgetter("f_code")


def stack_codes(frame: FrameType) -> list[CodeType]:
    """The code objects of ``frame`` and its callers, innermost first, read with no
    Python bytecode running: ``frame`` belongs to another thread, and on CPython 3.11 a
    walk of ``f_back`` in a Python loop, which lets that thread run between two steps
    (the GIL is handed over at a loop's jump, or by a finaliser of a collection the walk
    allocates into), crashed the process with SIGSEGV under a threaded server's load
    (``PyFrame_GetBack`` reading a frame its thread had meanwhile popped). Here the walk
    is one C call (accumulate of ``getattr(f, "f_back")`` while ``bool``, then ``f_code``:
    builtins only, no function of ours), with the collector paused around it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        chain = accumulate(repeat("f_back", MAX_DEPTH - 1), getattr, initial=frame)
        return list(map(_CODE, takewhile(bool, chain)))  # a frame is true, None false
    finally:
        if collecting:
            gc.enable()


@dataclass(frozen=True, slots=True)
class FunctionStats:
    function: str
    file: str
    line: int
    self_samples: int
    total_samples: int


@dataclass(slots=True)
class Session:
    """One request's samples, written only under the sampler's lock."""

    thread_id: int
    sampled: bool
    samples: int = 0
    memory_start: int | None = None  # traced bytes when it opened (MemoryTracer.begin)
    own: dict[CodeType, int] = field(default_factory=dict)
    total: dict[CodeType, int] = field(default_factory=dict)

    def add(self, frame: FrameType) -> None:
        codes = stack_codes(frame)
        if not codes:
            return
        self.samples += 1
        leaf = codes[0]
        self.own[leaf] = self.own.get(leaf, 0) + 1
        for code in set(codes):  # recursion counts once per sample
            self.total[code] = self.total.get(code, 0) + 1

    def top(self, limit: int) -> list[FunctionStats]:
        """The ``limit`` functions with the most samples on the stack, ties by own time."""
        ranked = sorted(self.total, key=lambda c: (-self.total[c], -self.own.get(c, 0)))
        return [
            FunctionStats(
                function=code.co_qualname,
                file=code.co_filename,
                line=code.co_firstlineno,
                self_samples=self.own.get(code, 0),
                total_samples=self.total[code],
            )
            for code in ranked[:limit]
        ]


class Sampler:
    """The sampling core: ``tick`` takes one sample of every open session's thread.
    The thread (``start``) calls it every ``interval_s`` while sessions are open; tests
    call it themselves with their own ``frames``."""

    def __init__(self, interval_s: float, *, frames: Frames = sys._current_frames) -> None:
        if interval_s <= 0:
            raise ValueError("the profiling interval must be positive")
        self.interval_s = interval_s
        self._frames = frames
        self._lock = threading.Lock()
        self._open: dict[int, Session] = {}  # by id(session): several may share a thread
        self._work = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, thread_id: int, *, sampled: bool) -> Session:
        session = Session(thread_id, sampled)
        with self._lock:
            self._open[id(session)] = session
        self._work.set()
        return session

    def end(self, session: Session) -> Session:
        with self._lock:
            self._open.pop(id(session), None)
            if not self._open:
                self._work.clear()
        return session

    def tick(self) -> int:
        """Sample once; the number of sessions sampled."""
        with self._lock:
            if not self._open:
                return 0
            frames = self._frames()
            taken = 0
            frame: FrameType | None = None
            try:
                for session in self._open.values():
                    frame = frames.get(session.thread_id)
                    if frame is not None:
                        session.add(frame)
                        taken += 1
            finally:
                # The mapping holds this thread's own frame, which (once this function
                # returns) would hold the mapping: a cycle that kept every sampled
                # request's frames, and their locals, alive until the collector ran
                # (profile_memory saw a request's freed buffer as still held).
                del frames, frame
            return taken

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="opsmesh-profiler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._work.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._work.wait()  # idle (no request open): no wake-ups at all
            if self._stop.wait(self.interval_s):
                return
            self.tick()


@dataclass(frozen=True, slots=True)
class MemoryUse:
    peak_bytes: int  # the peak of traced memory while it was open, above its start
    net_bytes: int  # traced memory at its end minus at its start


class TracedMemory:
    """What ``MemoryTracer`` reads of ``tracemalloc`` (a fake in tests)."""

    def is_tracing(self) -> bool:
        return tracemalloc.is_tracing()

    def start(self) -> None:
        tracemalloc.start()

    def stop(self) -> None:
        tracemalloc.stop()

    def reset_peak(self) -> None:
        tracemalloc.reset_peak()

    def traced(self) -> tuple[int, int]:
        """Current and peak traced bytes."""
        return tracemalloc.get_traced_memory()


class MemoryTracer:
    def __init__(self, traced: TracedMemory | None = None) -> None:
        self._traced = traced or TracedMemory()
        self._lock = threading.Lock()
        self._open = 0
        self._started = False  # stop only what this tracer started

    def start(self) -> None:
        if not self._traced.is_tracing():
            self._traced.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._traced.stop()
            self._started = False

    def begin(self) -> int:
        """A request opens: its starting level (the peak reset if it is the only one)."""
        with self._lock:
            self._open += 1
            if self._open == 1:
                self._traced.reset_peak()
            current, _ = self._traced.traced()
            return current

    def end(self, start: int) -> MemoryUse:
        with self._lock:
            self._open = max(0, self._open - 1)
            current, peak = self._traced.traced()
        return MemoryUse(peak_bytes=max(0, peak - start), net_bytes=current - start)
