"""notifier settings (environment, validated at start)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from opsmesh.settings import CommonSettings


class NotifierSettings(CommonSettings):
    http_port: int = Field(8083, alias="NOTIFIER_HTTP_PORT", ge=1, le=65535)
    receivers_file: str | None = Field(None, alias="NOTIFIER_RECEIVERS_FILE")
    default_webhook_url: str | None = Field(None, alias="NOTIFIER_DEFAULT_WEBHOOK_URL")
    # Networks a webhook may reach although they are loopback/private (e.g. 127.0.0.0/8 in dev).
    allowed_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        (), alias="NOTIFIER_ALLOWED_NETWORKS"
    )
    send_timeout_s: float = Field(10.0, gt=0, le=120, alias="NOTIFIER_SEND_TIMEOUT_S")
    retry_initial_s: float = Field(0.5, gt=0, alias="NOTIFIER_RETRY_INITIAL_S")
    retry_max_s: float = Field(30.0, gt=0, alias="NOTIFIER_RETRY_MAX_S")
    # Below the consumer's max.poll.interval (300 s) until delivery moves off the consume loop.
    retry_deadline_s: float = Field(120.0, gt=0, le=240, alias="NOTIFIER_RETRY_DEADLINE_S")

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
