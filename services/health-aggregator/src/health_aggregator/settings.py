"""health-aggregator settings (environment, validated at start)."""

from __future__ import annotations

from pydantic import Field

from opsmesh.settings import CommonSettings


class HealthAggregatorSettings(CommonSettings):
    http_port: int = Field(8085, alias="HEALTH_AGGREGATOR_HTTP_PORT", ge=1, le=65535)
