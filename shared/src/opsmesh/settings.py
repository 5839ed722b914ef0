"""Typed settings from the environment, validated at start.

Defaults match ``compose/``. Every service's settings extend ``CommonSettings``; the
infrastructure endpoints keep one name across services (``OPSMESH_*``).
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class SettingsError(SystemExit):
    """Settings failed validation; the message names each bad variable."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", alias="OPSMESH_KAFKA_BOOTSTRAP")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", alias="OPSMESH_KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, alias="OPSMESH_KAFKA_SASL_MECHANISM"
    )
    kafka_sasl_username: str | None = Field(None, alias="OPSMESH_KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(None, alias="OPSMESH_KAFKA_SASL_PASSWORD")
    kafka_ssl_cafile: str | None = Field(None, alias="OPSMESH_KAFKA_SSL_CAFILE")

    pg_dsn: SecretStr = Field(
        SecretStr("postgresql://opsmesh:opsmesh@127.0.0.1:5432/opsmesh"), alias="OPSMESH_PG_DSN"
    )
    redis_url: SecretStr = Field(SecretStr("redis://127.0.0.1:6379/0"), alias="OPSMESH_REDIS_URL")

    http_host: str = Field("0.0.0.0", alias="OPSMESH_HTTP_HOST")  # noqa: S104 - a server's bind
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="OPSMESH_LOG_LEVEL"
    )
    # Bounded graceful drain: how long SIGTERM may take before in-flight work is abandoned.
    shutdown_timeout_s: float = Field(6.0, gt=0, le=60, alias="OPSMESH_SHUTDOWN_TIMEOUT_S")
    instance_id: str | None = Field(None, alias="OPSMESH_INSTANCE_ID")
    # How often each service reports its dead letters and consumer lag as signals
    # (``opsmesh.selfreport``); 0 turns the reports off.
    self_report_s: float = Field(30.0, ge=0, le=3600, alias="OPSMESH_SELF_REPORT_S")


def load_settings(settings_type: type[S]) -> S:
    """Read and validate settings; exit with a readable message naming bad variables."""
    try:
        return settings_type()
    except ValidationError as exc:
        lines = [f"invalid settings for {settings_type.__name__}:"]
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            lines.append(f"  {where}: {error['msg']}")
        raise SettingsError("\n".join(lines)) from None
