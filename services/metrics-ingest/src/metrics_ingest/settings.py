"""metrics-ingest settings (environment, validated at start)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from opsmesh.settings import CommonSettings


class MetricsIngestSettings(CommonSettings):
    http_port: int = Field(8081, alias="METRICS_INGEST_HTTP_PORT", ge=1, le=65535)
    window_sizes_s: Annotated[tuple[float, ...], NoDecode] = Field(
        (10.0, 60.0), alias="METRICS_INGEST_WINDOWS_S"
    )
    allowed_lateness_s: float = Field(5.0, ge=0, alias="METRICS_INGEST_ALLOWED_LATENESS_S")
    idle_grace_s: float = Field(5.0, ge=0, alias="METRICS_INGEST_IDLE_GRACE_S")

    @field_validator("window_sizes_s", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value
