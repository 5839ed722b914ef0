"""Request profiles, as the SDK's sampling profiler publishes them.

A profile is the aggregate of one request's stack samples: per function, how many samples
had it on the stack (``total``) and how many caught it running itself (``self``), the top
functions only. query-analyzer keeps them per route (the service that owns performance
analysis).

With the SDK's ``profile_memory`` on, a profile also carries the request's memory as
``tracemalloc`` saw it: the peak of traced memory above the request's starting level, and
the net change from its start to its end (negative when it freed more than it kept). Both
are optional (absent from older SDKs and with the setting off), so version 1 stands.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from opsmesh.events.base import EpochSeconds, Event, Name

Id = Annotated[str, msgspec.Meta(max_length=128)]
Route = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Count = Annotated[int, msgspec.Meta(ge=0)]
MAX_FUNCTIONS = 100
MAX_BYTES = 2**53  # a float64 holds every integer up to here (query-analyzer sums them)


class ProfiledFunction(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One function: ``qualname`` with the file and first line that tell two apart."""

    function: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    file: Annotated[str, msgspec.Meta(max_length=1024)]
    line: Count
    self_samples: Count
    total_samples: Count


class ProfileRecorded(Event, kw_only=True, frozen=True):
    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.profile.recorded"
    SCHEMA_VERSION: ClassVar[int] = 1

    service: Name
    instance: Name
    route: Route
    method: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    status: Annotated[int, msgspec.Meta(ge=100, le=599)]
    # Why it was profiled: "slow" (at least the application's threshold) or "sampled".
    reason: Annotated[str, msgspec.Meta(pattern="^(slow|sampled)$")]
    duration_ms: Annotated[float, msgspec.Meta(ge=0)]
    interval_ms: Annotated[float, msgspec.Meta(gt=0)]
    samples: Count
    functions: Annotated[list[ProfiledFunction], msgspec.Meta(max_length=MAX_FUNCTIONS)]
    trace_id: Id | None = None
    span_id: Id | None = None
    started_at: EpochSeconds
    memory_peak_bytes: Annotated[int, msgspec.Meta(ge=0, le=MAX_BYTES)] | None = None
    memory_net_bytes: Annotated[int, msgspec.Meta(ge=-MAX_BYTES, le=MAX_BYTES)] | None = None
