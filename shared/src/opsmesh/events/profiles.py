"""Request profiles, as the SDK's sampling profiler publishes them.

A profile is the aggregate of one request's stack samples: per function, how many samples
had it on the stack (``total``) and how many caught it running itself (``self``), the top
functions only. query-analyzer keeps them per route (the service that owns performance
analysis).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from opsmesh.events.base import EpochSeconds, Event, Name

Id = Annotated[str, msgspec.Meta(max_length=128)]
Route = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Count = Annotated[int, msgspec.Meta(ge=0)]
MAX_FUNCTIONS = 100


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
