"""Test doubles and hand-built inputs for alert-engine's tests and benchmarks; no runtime
module imports this."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PostedAlert:
    """An alert as a client posts it, built by hand (``core.alerts.Posted``)."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str
