"""Request profiling: one pyinstrument ``Profiler`` per profiled request.

pyinstrument (the ``profiling`` extra) installs a C profile function in the request's
thread; it records the stack when at least ``interval_s`` has passed since its last record,
with the time since then. A request on an asyncio loop is profiled in its own task
(``async_mode="enabled"``): when it awaits, the time until it runs again goes to the
function that awaited, not to what other requests ran on the loop meanwhile. A request on
a thread of its own (Django under WSGI) is profiled with ``async_mode="disabled"``.

Which requests: ``profile_sample_rate`` draws a share of all requests at their start, and
every request at least ``profile_slow_ms`` slow is sent too. Slowness is known only at a
request's end, and a profile function can only be installed from the request's own thread
(no other thread can start it halfway through), so with ``profile_slow_ms`` set every
request is profiled from its start and the profile is dropped at its end unless the
request was slow or drawn: the sent profiles cover whole requests, as the hand-written
sampler's did, at the cost of pyinstrument's per-call check on every request while the
setting is on. With only a sample rate, requests not drawn are not profiled at all.

What is sent (``fold``): pyinstrument's records of the request (the stacks, with their
times, that its frame tree is built from), from the frame that opened the request (below
it, the thread and the server's loop are dropped, as pyinstrument trims the tree's stem),
folded per function into the event's representation: a function's ``total`` is the time it
was on the stack (once per stack when it recurses), its ``self`` the time it was the
innermost frame, time awaiting included (as pyinstrument counts it), both in sampling
intervals (time / ``interval_s``, rounded), as are the profile's ``samples``. A stack that
waited in one C call for a second counts a second's worth of intervals, not one. Folding the
records rather than building the tree (whose frames point at their parents) leaves no
cyclic garbage per request: the records are freed as soon as they are folded, before the
request's memory is read (they do count in its ``memory_peak_bytes``: roughly a hundred
bytes per frame per record).

Memory (``profile_memory``, opt-in): ``MemoryTracer`` runs ``tracemalloc`` and gives each
profiled request the peak of traced memory above its starting level and its net change.
tracemalloc traces the whole process and slows every allocation while it runs (hence
off by default), and its peak is process-wide: the peak is reset when a request opens with
no other open, so a request alone gets its own figures, while requests that overlap share
the peak, and each one's figures also hold what the others allocated meanwhile.
"""

from __future__ import annotations

import logging
import threading
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pyinstrument import Profiler
    from pyinstrument.session import Session

log = logging.getLogger("opsmesh_client")
ProfilerFactory = Callable[..., "Profiler"]
_THREAD_FILE = "<thread>"  # pyinstrument's pseudo-frame for the thread at a stack's root


@dataclass(frozen=True, slots=True)
class FunctionStats:
    function: str
    file: str
    line: int
    self_samples: int
    total_samples: int


@dataclass(frozen=True, slots=True)
class Folded:
    samples: int
    functions: list[FunctionStats]


@dataclass(slots=True)
class OpenProfile:
    """One request's profile while it is open."""

    profiler: Profiler | None  # pyinstrument's; None when the request is not profiled
    sampled: bool  # drawn into profile_sample_rate's share
    memory_start: int | None = None  # traced bytes when it opened (MemoryTracer.begin)


class RequestProfiler:
    """Starts and stops the requests' pyinstrument profilers; never raises into a request."""

    def __init__(self, interval_s: float, profiler: ProfilerFactory) -> None:
        if interval_s <= 0:
            raise ValueError("the profiling interval must be positive")
        self.interval_s = interval_s
        self._profiler = profiler

    @classmethod
    def load(cls, interval_s: float) -> RequestProfiler | None:
        """pyinstrument's profiler, or None (one log line) when it is not installed."""
        try:
            from pyinstrument import Profiler  # noqa: PLC0415 - an optional extra
        except ImportError:
            log.warning(
                "opsmesh client: profiling is configured (profile_slow_ms or "
                "profile_sample_rate) but pyinstrument is not installed, so requests are "
                "not profiled; install opsmesh-client[profiling] to profile them"
            )
            return None
        return cls(interval_s, Profiler)

    def start(self, *, asynchronous: bool) -> Profiler | None:
        """A started profiler for the calling thread (or task, ``asynchronous``); None when
        pyinstrument refuses, as it does for a second profiler in one async context."""
        mode: Literal["enabled", "disabled"] = "enabled" if asynchronous else "disabled"
        profiler = self._profiler(interval=self.interval_s, async_mode=mode)
        try:
            profiler.start()
        except (RuntimeError, ValueError) as exc:
            log.debug("opsmesh client: a request is not profiled: %s", exc)
            return None
        return profiler

    def stop(self, profiler: Profiler) -> Session | None:
        try:
            session = profiler.stop()
        except RuntimeError as exc:  # stopped on another thread than it started on
            log.debug("opsmesh client: a request's profiler did not stop: %s", exc)
            return None
        # The profiler keeps its last session, and a context copied while it ran (a task
        # the request started) keeps the profiler: without the reset, those copies held
        # the request's records until the collector freed them.
        profiler.reset()  # type: ignore[no-untyped-call]  # pyinstrument leaves it unannotated
        return session

    def fold(self, session: Session, limit: int) -> Folded:
        return fold(session.frame_records, session.start_call_stack, self.interval_s, limit)


def fold(
    records: Sequence[tuple[Sequence[str], float]],
    start: Sequence[str],
    interval_s: float,
    limit: int,
) -> Folded:
    """pyinstrument's records of a request (each a stack, root first, and the time since
    the record before) as the event's top functions: the ``limit`` functions with the most
    intervals on the stack, ties by their own. ``start`` is the stack that started the
    profiler: what a record shares with it below the function that opened the request
    (the thread, the server's loop) is dropped, as pyinstrument's frame tree trims its stem.
    """
    start_ids = [_identifier(info) for info in start]
    own: dict[str, float] = {}
    total: dict[str, float] = {}
    names: dict[str, tuple[str, str, int]] = {}
    profiled = 0.0
    for stack, seconds in records:
        profiled += seconds
        shared = _shared(stack, start_ids)
        frames = [
            info
            for info in stack[max(0, shared - 1) :]
            if _identifier(info) not in _SYNTHETIC and _file(info) != _THREAD_FILE
        ]
        if not frames:
            continue
        # The innermost frame's own time, awaiting included (an [await] leaf is its
        # parent's, as pyinstrument counts it).
        leaf = _identifier(frames[-1])
        own[leaf] = own.get(leaf, 0.0) + seconds
        for info in frames:
            identifier = _identifier(info)
            if identifier not in names:
                names[identifier] = _name(identifier, info)
        for identifier in {_identifier(info) for info in frames}:  # recursion: once
            total[identifier] = total.get(identifier, 0.0) + seconds

    def intervals(seconds: float) -> int:
        return int(seconds / interval_s + 0.5)

    ranked = sorted(total, key=lambda i: (-total[i], -own.get(i, 0.0)))
    functions = [
        FunctionStats(
            function=names[i][0],
            file=names[i][1],
            line=names[i][2],
            self_samples=intervals(own.get(i, 0.0)),
            total_samples=intervals(total[i]),
        )
        for i in ranked[:limit]
        if intervals(total[i]) > 0
    ]
    return Folded(intervals(profiled), functions)


# pyinstrument's frame info: "function\x00file\x00first line", then attributes each after
# a \x01 ("c" + the class of a method's self, "l" + the line running).
_SYNTHETIC = frozenset({"[await]", "[self]", "[out-of-context]", "[root]"})


def _identifier(info: str) -> str:
    return info.partition("\x01")[0]


def _file(info: str) -> str:
    parts = _identifier(info).split("\x00")
    return parts[1] if len(parts) > 1 else ""


def _shared(stack: Sequence[str], start_ids: Sequence[str]) -> int:
    """How many frames from the root ``stack`` shares with the starting stack."""
    shared = 0
    for info, started in zip(stack, start_ids, strict=False):
        if _identifier(info) != started:
            break
        shared += 1
    return shared


def _name(identifier: str, info: str) -> tuple[str, str, int]:
    """``Class.method`` for a method (pyinstrument records the class beside the code's
    name), the file and the function's first line."""
    function, _, rest = identifier.partition("\x00")
    file, _, line = rest.partition("\x00")
    owner = next((a[1:] for a in info.split("\x01")[1:] if a.startswith("c")), None)
    function = function or "?"
    return (
        f"{owner}.{function}" if owner else function,
        file,
        int(line) if line.isdigit() else 0,
    )


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
