"""health-aggregator settings (environment, validated at start)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from health_aggregator.core.policy import Policy
from opsmesh.settings import CommonSettings


class HealthAggregatorSettings(CommonSettings):
    http_port: int = Field(8085, alias="HEALTH_AGGREGATOR_HTTP_PORT", ge=1, le=65535)
    # Per-service policy, "checkout=quorum,search=any"; others use the default.
    policies: Annotated[dict[str, Policy], NoDecode] = Field(
        default_factory=dict, alias="HEALTH_AGGREGATOR_POLICIES"
    )
    default_policy: Policy = Field(Policy.ALL, alias="HEALTH_AGGREGATOR_DEFAULT_POLICY")
    view_refresh_s: float = Field(0.5, gt=0, le=60, alias="HEALTH_AGGREGATOR_VIEW_REFRESH_S")
    history_limit: int = Field(100, ge=1, le=10_000, alias="HEALTH_AGGREGATOR_HISTORY_LIMIT")
    # Status changes older than this are purged.
    history_retention_days: float = Field(
        30.0, gt=0, le=3650, alias="HEALTH_AGGREGATOR_HISTORY_RETENTION_DAYS"
    )
    # A check silent this long after its TTL ran out is deregistered (Consul's
    # deregister_critical_service_after): gone from the fleet view, its alert resolved,
    # its row purged.
    deregister_after_days: float = Field(
        1.0, gt=0, le=3650, alias="HEALTH_AGGREGATOR_DEREGISTER_AFTER_DAYS"
    )
    # Active probes (YAML or JSON list); none when unset.
    probes_file: Path | None = Field(None, alias="HEALTH_AGGREGATOR_PROBES_FILE")
    probe_jitter: float = Field(0.1, ge=0, le=0.5, alias="HEALTH_AGGREGATOR_PROBE_JITTER")
    # A report stamped further ahead of this clock is dead-lettered: it would never expire
    # and would hide every later report of its check.
    max_future_s: float = Field(300.0, ge=0, alias="HEALTH_AGGREGATOR_MAX_FUTURE_S")

    @field_validator("policies", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("expected service=policy pairs separated by commas")
            return {k.strip(): v.strip() for k, v in pairs}
        return value
