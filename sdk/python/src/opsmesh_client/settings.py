"""Settings: keyword arguments of ``init`` first, then ``OPSMESH_*`` environment variables,
then defaults, as Sentry's and OpenTelemetry's SDKs read theirs."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from opsmesh_client.wire import DEFAULT_TOPICS, Kind


class SettingsError(ValueError):
    """A setting that cannot work (a deterministic error: fix the configuration)."""


# Setting name -> environment variable.
ENVIRONMENT = {
    "service": "OPSMESH_SERVICE",
    "environment": "OPSMESH_ENVIRONMENT",
    "instance": "OPSMESH_INSTANCE",
    "kafka": "OPSMESH_KAFKA_BOOTSTRAP",
    "http": "OPSMESH_HTTP_URL",
    "http_token": "OPSMESH_HTTP_TOKEN",
    "enabled": "OPSMESH_ENABLED",
    "buffer_size": "OPSMESH_BUFFER_SIZE",
    "flush_interval_s": "OPSMESH_FLUSH_INTERVAL_S",
    "metrics_interval_s": "OPSMESH_METRICS_INTERVAL_S",
    "heartbeat_interval_s": "OPSMESH_HEARTBEAT_INTERVAL_S",
    "query_min_ms": "OPSMESH_QUERY_MIN_MS",
    "database": "OPSMESH_DATABASE",
    "send_timeout_s": "OPSMESH_SEND_TIMEOUT_S",
    "profile_slow_ms": "OPSMESH_PROFILE_SLOW_MS",
    "profile_sample_rate": "OPSMESH_PROFILE_SAMPLE_RATE",
    "profile_interval_ms": "OPSMESH_PROFILE_INTERVAL_MS",
    "profile_memory": "OPSMESH_PROFILE_MEMORY",
}


@dataclass(frozen=True, slots=True)
class Settings:
    service: str
    environment: str = "prod"
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    kafka: str | None = None  # bootstrap servers, host:port[,host:port]
    http: str | None = None  # the mesh's HTTP ingest base URL, when Kafka is unreachable
    http_token: str | None = None
    enabled: bool = True
    buffer_size: int = 10_000
    flush_interval_s: float = 0.5
    # Several collections per rollup window (metrics-ingest's smallest is 10 s): a window
    # reads a histogram's quantiles from the increase between its samples, as rate() does.
    metrics_interval_s: float = 2.0
    heartbeat_interval_s: float = 10.0
    # Queries at least this slow are sent; 0 sends all (N+1 detection needs the fast ones).
    query_min_ms: float = 0.0
    database: str = "default"  # the database name on query events when a hook cannot tell
    send_timeout_s: float = 10.0  # how long a record may wait for the mesh before dropping
    # Profiling (opsmesh_client.profiling) is off unless one of these is set: requests at
    # least profile_slow_ms slow are profiled (0: none), and this share of all requests.
    profile_slow_ms: float = 0.0
    profile_sample_rate: float = 0.0
    profile_interval_ms: float = 10.0  # pyinstrument's interval between two stack records
    # tracemalloc for profiled requests' memory (peak and net); it slows every allocation
    # of the process while on, so it is off unless asked for (and needs profiling on).
    profile_memory: bool = False
    topics: Mapping[Kind, str] = field(default_factory=lambda: dict(DEFAULT_TOPICS))
    kafka_config: Mapping[str, Any] = field(default_factory=dict)  # extra librdkafka keys

    def __post_init__(self) -> None:
        if not self.service:
            raise SettingsError("service is required (init(service=...) or OPSMESH_SERVICE)")
        if self.enabled and not self.kafka and not self.http:
            raise SettingsError(
                "no transport: give kafka= (OPSMESH_KAFKA_BOOTSTRAP) or http= (OPSMESH_HTTP_URL)"
            )
        if self.http and not self.kafka and not self.http_token:
            raise SettingsError("the HTTP transport needs http_token (OPSMESH_HTTP_TOKEN)")
        for name in ("buffer_size", "flush_interval_s", "metrics_interval_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")
        for name in ("heartbeat_interval_s", "send_timeout_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")
        if self.query_min_ms < 0:
            raise SettingsError("query_min_ms must be >= 0")
        if self.profile_slow_ms < 0:
            raise SettingsError("profile_slow_ms must be >= 0 (0: slow requests not profiled)")
        if not 0.0 <= self.profile_sample_rate <= 1.0:
            raise SettingsError("profile_sample_rate must be between 0 and 1")
        if self.profile_interval_ms < 1:
            raise SettingsError("profile_interval_ms must be at least 1")

    @property
    def profiling(self) -> bool:
        return self.enabled and (self.profile_slow_ms > 0 or self.profile_sample_rate > 0)


_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return _BOOL[raw.strip().lower()]
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except (KeyError, ValueError) as exc:
        raise SettingsError(f"{ENVIRONMENT[name]}={raw!r} is not a valid {name}") from exc
    return raw


def load(environ: Mapping[str, str] | None = None, **given: Any) -> Settings:
    """Keyword arguments (None counts as not given), then the environment."""
    env = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    unknown = set(given) - known
    if unknown:
        raise SettingsError(f"unknown settings: {sorted(unknown)}")
    values = {k: v for k, v in given.items() if v is not None}
    defaults = Settings.__dataclass_fields__
    for name, variable in ENVIRONMENT.items():
        if name in values or variable not in env:
            continue
        default = defaults[name].default
        values[name] = _convert(name, env[variable], default)
    values.setdefault("service", "")
    return Settings(**values)
