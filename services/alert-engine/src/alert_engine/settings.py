"""alert-engine settings (environment, validated at start)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from alert_engine.core.durations import parse_duration
from opsmesh.settings import CommonSettings


class AlertEngineSettings(CommonSettings):
    http_port: int = Field(8082, alias="ALERT_ENGINE_HTTP_PORT", ge=1, le=65535)
    rules_files: Annotated[tuple[str, ...], NoDecode] = Field((), alias="ALERT_ENGINE_RULES_FILES")
    receiver: str = Field("default", alias="ALERT_ENGINE_RECEIVER")
    group_by: Annotated[tuple[str, ...], NoDecode] = Field(
        ("alertname",), alias="ALERT_ENGINE_GROUP_BY"
    )
    group_wait_s: float = Field(30.0, alias="ALERT_ENGINE_GROUP_WAIT")
    group_interval_s: float = Field(300.0, alias="ALERT_ENGINE_GROUP_INTERVAL")
    repeat_interval_s: float = Field(4 * 3600.0, alias="ALERT_ENGINE_REPEAT_INTERVAL")
    external_url: str = Field("http://127.0.0.1:8082", alias="ALERT_ENGINE_EXTERNAL_URL")

    @field_validator("rules_files", "group_by", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("group_wait_s", "group_interval_s", "repeat_interval_s", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)
        return value
