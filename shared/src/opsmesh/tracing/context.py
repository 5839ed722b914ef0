"""W3C trace context (``traceparent``) as a plain value: parse, format, mint.

Pure and cheap on purpose: every produced record carries a ``traceparent`` whether or
not spans are exported, and the kit parses a consumed record's header only when a
handler asks for it (``Received.trace``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

import msgspec

# Trace and span ids need uniqueness, not secrecy: a seeded PRNG is ~20x cheaper per record
# than reading the OS's random source on the produce hot path.
_random = random.Random()  # noqa: S311

TRACEPARENT = "traceparent"
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.ASCII | re.DOTALL
)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def random_bits(bits: int) -> int:
    return _random.getrandbits(bits)


def random_hex(bits: int) -> str:
    return f"{_random.getrandbits(bits):0{bits // 4}x}"


class TraceContext(msgspec.Struct, frozen=True, gc=False):
    """A span's place in a trace: the ``traceparent`` of W3C Trace Context, version 00.
    A Struct: one may be built per consumed record, and a frozen dataclass costs ~6x."""

    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits, not all zero: the parent of what comes next
    flags: str = "01"  # trace-flags; 01: sampled

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span id in the same trace."""
        return TraceContext(self.trace_id, random_hex(64), self.flags)


def new_trace() -> TraceContext:
    """The root of a new trace (sampled), for work that no incoming context caused."""
    return TraceContext(random_hex(128), random_hex(64))


def parse_traceparent(value: str | bytes | None) -> TraceContext | None:
    """The context of a ``traceparent`` header, or None when absent or invalid.

    As W3C Trace Context asks of a receiver: version ``ff`` is invalid; a version other
    than 00 is read for its first four fields (anything after them must start with
    ``-``); hex digits are lowercase; all-zero ids are invalid. The flags are kept."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, flags)


def traceparent_of(headers: Iterable[tuple[str, bytes]] | None) -> bytes | None:
    """The raw ``traceparent`` value among Kafka record headers (the last one), unparsed."""
    found: bytes | None = None
    for key, value in headers or ():
        if key == TRACEPARENT:
            found = value
    return found


# Span links per output at most: a notification for a group of hundreds of alerts links
# the first traces only (OpenTelemetry's SDK keeps 128 by default).
MAX_LINKS = 32


class FanIn:
    """The trace of one output made from many inputs (an N+1 finding from a request's
    queries, a notification from a group's alerts): the newest input's context is the
    parent; the first context seen of each other trace is a link (at most
    ``MAX_LINKS``). Inputs of the parent's own trace are already in it: no link."""

    __slots__ = ("_others", "parent")

    def __init__(self) -> None:
        self.parent: TraceContext | None = None
        self._others: dict[str, TraceContext] = {}

    def add(self, context: TraceContext | None) -> None:
        if context is None:
            return
        parent = self.parent
        if (
            parent is not None
            and parent.trace_id != context.trace_id
            and parent.trace_id not in self._others
            and len(self._others) < MAX_LINKS
        ):
            self._others[parent.trace_id] = parent
        self.parent = context

    @property
    def links(self) -> tuple[TraceContext, ...]:
        parent = self.parent
        return tuple(
            c for c in self._others.values() if parent is None or c.trace_id != parent.trace_id
        )


def fan_in(contexts: Iterable[TraceContext | None]) -> FanIn:
    """``contexts`` oldest first, folded into one ``FanIn``."""
    merged = FanIn()
    for context in contexts:
        merged.add(context)
    return merged
