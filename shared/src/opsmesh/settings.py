"""Typed settings from the environment, validated at start.

Defaults match ``compose/``. Every service's settings extend ``CommonSettings``; the
infrastructure endpoints keep one name across services (``OPSMESH_*``).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)
T = TypeVar("T")


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A setting written as one comma-separated variable (``a, b,,c`` is ``("a", "b", "c")``;
# empty parts are dropped); each part is then validated as ``T``. A tuple or list given
# in code is taken as it is.
CommaList = Annotated[tuple[T, ...], NoDecode, BeforeValidator(_split_commas)]

# The infrastructure endpoints' variables, one name in every service, CLI and the local stack.
ENV_KAFKA = "OPSMESH_KAFKA_BOOTSTRAP"
ENV_PG = "OPSMESH_PG_DSN"
ENV_REDIS = "OPSMESH_REDIS_URL"


class SettingsError(SystemExit):
    """Settings failed validation; the message names each bad variable."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", alias=ENV_KAFKA)
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
        SecretStr("postgresql://opsmesh:opsmesh@127.0.0.1:5432/opsmesh"), alias=ENV_PG
    )
    redis_url: SecretStr = Field(SecretStr("redis://127.0.0.1:6379/0"), alias=ENV_REDIS)

    http_host: str = Field("0.0.0.0", alias="OPSMESH_HTTP_HOST")  # noqa: S104 - a server's bind
    # Open HTTP connections per process; more are answered 503 and closed (file descriptors
    # are finite: 20k idle sockets would exhaust them).
    http_max_connections: int = Field(512, ge=1, alias="OPSMESH_HTTP_MAX_CONNECTIONS")
    # An idle keep-alive connection is closed after this; a new connection must have sent
    # its first request's headers within the header timeout (slowloris).
    http_keepalive_timeout_s: float = Field(75.0, gt=0, alias="OPSMESH_HTTP_KEEPALIVE_TIMEOUT_S")
    http_header_timeout_s: float = Field(10.0, gt=0, alias="OPSMESH_HTTP_HEADER_TIMEOUT_S")
    # A request, body included, is read and answered within this (408/503 past it).
    http_request_timeout_s: float = Field(60.0, gt=0, alias="OPSMESH_HTTP_REQUEST_TIMEOUT_S")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="OPSMESH_LOG_LEVEL"
    )
    # Bounded graceful drain: how long SIGTERM may take before in-flight work is abandoned.
    shutdown_timeout_s: float = Field(6.0, gt=0, le=60, alias="OPSMESH_SHUTDOWN_TIMEOUT_S")
    instance_id: str | None = Field(None, alias="OPSMESH_INSTANCE_ID")
    # A consumer whose handler makes no progress (transient failures retried, or a failure
    # no record can be blamed for) turns readiness red after this long...
    consumer_stall_after_s: float = Field(30.0, gt=0, alias="OPSMESH_CONSUMER_STALL_AFTER_S")
    # ...and gives up after this long: the process exits non-zero for its supervisor to
    # restart it (replaying from the last commit).
    consumer_give_up_after_s: float = Field(300.0, gt=0, alias="OPSMESH_CONSUMER_GIVE_UP_AFTER_S")
    # How often each service reports its dead letters and consumer lag as signals
    # (``opsmesh.selfreport``); 0 turns the reports off.
    self_report_s: float = Field(30.0, ge=0, le=3600, alias="OPSMESH_SELF_REPORT_S")
    # Retention purges (``opsmesh.db.retention``): how often each service deletes rows past
    # its tables' retention, and how many rows one delete statement may take.
    retention_interval_s: float = Field(600.0, gt=0, alias="OPSMESH_RETENTION_INTERVAL_S")
    retention_batch_rows: int = Field(1_000, ge=1, le=100_000, alias="OPSMESH_RETENTION_BATCH_ROWS")

    @model_validator(mode="after")
    def _give_up_after_stall(self) -> CommonSettings:
        if self.consumer_give_up_after_s < self.consumer_stall_after_s:
            raise ValueError(
                "OPSMESH_CONSUMER_GIVE_UP_AFTER_S must be at least OPSMESH_CONSUMER_STALL_AFTER_S"
            )
        return self


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
