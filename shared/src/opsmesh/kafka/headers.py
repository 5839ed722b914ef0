"""CloudEvents 1.0 binary-mode Kafka headers and W3C trace context.

Binary mode: the record value is the event data; attributes travel as ``ce_*`` headers
(CloudEvents Kafka protocol binding). ``traceparent`` follows one trace through the mesh.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

Headers = list[tuple[str, bytes]]

# Trace and event ids need uniqueness, not secrecy: a seeded PRNG is ~20x cheaper per record
# than reading the OS's random source on the produce hot path.
_random = random.Random()  # noqa: S311


def _hex(bits: int) -> str:
    return f"{_random.getrandbits(bits):0{bits // 4}x}"


SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, for the record this service produces."""
        return TraceContext(self.trace_id, _hex(64), self.flags)


def new_trace() -> TraceContext:
    return TraceContext(_hex(128), _hex(64))


def parse_traceparent(value: str | bytes | None) -> TraceContext | None:
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    match = _TRACEPARENT.match(text.strip().lower())
    if not match or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return TraceContext(match.group(1), match.group(2), match.group(3))


def cloudevent_headers(
    *,
    event_type: str,
    source: str,
    time_s: float,
    trace: TraceContext | None,
    event_id: str | None = None,
) -> Headers:
    stamp = datetime.fromtimestamp(time_s, UTC).isoformat().replace("+00:00", "Z")
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", (event_id or str(uuid.UUID(int=_random.getrandbits(128), version=4))).encode()),
        ("ce_type", event_type.encode()),
        ("ce_source", source.encode()),
        ("ce_time", stamp.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if trace is not None:
        headers.append(("traceparent", trace.header().encode()))
    return headers


def header_value(headers: object, name: str) -> bytes | None:
    """The last value of ``name`` in aiokafka's header sequence, or None."""
    found: bytes | None = None
    for key, value in headers or ():  # type: ignore[attr-defined]
        if key == name:
            found = value
    return found
