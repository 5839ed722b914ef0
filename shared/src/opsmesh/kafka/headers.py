"""CloudEvents 1.0 binary-mode Kafka headers and W3C trace context.

Binary mode: the record value is the event data; attributes travel as ``ce_*`` headers
(CloudEvents Kafka protocol binding). ``traceparent`` follows one trace through the mesh
(``opsmesh.tracing``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from opsmesh.tracing.context import (
    TRACEPARENT,
    TraceContext,
    new_trace,
    parse_traceparent,
    random_bits,
    traceparent_of,
)

__all__ = [
    "CONTENT_TYPE",
    "SPEC_VERSION",
    "TRACEPARENT",
    "Headers",
    "TraceContext",
    "cloudevent_headers",
    "header_value",
    "new_trace",
    "parse_traceparent",
    "traceparent_of",
]

Headers = list[tuple[str, bytes]]

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


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
        ("ce_id", (event_id or str(uuid.UUID(int=random_bits(128), version=4))).encode()),
        ("ce_type", event_type.encode()),
        ("ce_source", source.encode()),
        ("ce_time", stamp.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if trace is not None:
        headers.append((TRACEPARENT, trace.header().encode()))
    return headers


def header_value(headers: object, name: str) -> bytes | None:
    """The last value of ``name`` in aiokafka's header sequence, or None."""
    found: bytes | None = None
    for key, value in headers or ():  # type: ignore[attr-defined]
        if key == name:
            found = value
    return found
