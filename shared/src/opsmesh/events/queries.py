"""Slow-query observations, as application database layers publish them."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from opsmesh.events.base import EpochSeconds, Event, Name

Sql = Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
Id = Annotated[str, msgspec.Meta(max_length=128)]


class SlowQueryObserved(Event, kw_only=True, frozen=True):
    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.query.slow-observed"
    SCHEMA_VERSION: ClassVar[int] = 1

    sql: Sql
    duration_ms: Annotated[float, msgspec.Meta(ge=0)]
    rows: Annotated[int, msgspec.Meta(ge=0)] | None = None
    database: Name
    application: Name
    request_id: Id | None = None
    trace_id: Id | None = None
    span_id: Id | None = None
    parent_span_id: Id | None = None
    started_at: EpochSeconds
    plan: list[Any] | dict[str, Any] | None = None
