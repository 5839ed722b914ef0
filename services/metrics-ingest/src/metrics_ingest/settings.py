"""metrics-ingest settings (environment, validated at start)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from opsmesh.settings import CommaList, CommonSettings


class MetricsIngestSettings(CommonSettings):
    http_port: int = Field(8081, alias="METRICS_INGEST_HTTP_PORT", ge=1, le=65535)
    window_sizes_s: CommaList[float] = Field((10.0, 60.0), alias="METRICS_INGEST_WINDOWS_S")
    allowed_lateness_s: float = Field(5.0, ge=0, alias="METRICS_INGEST_ALLOWED_LATENESS_S")
    idle_grace_s: float = Field(5.0, ge=0, alias="METRICS_INGEST_IDLE_GRACE_S")
    # Cardinality guard: new series of one metric name beyond this are rejected (0: off).
    max_series_per_metric: int = Field(10_000, ge=0, alias="METRICS_INGEST_MAX_SERIES_PER_METRIC")
    # Global guards, for the whole consumer group: series in all, and distinct metric
    # names (new series of a name beyond it are rejected). 0: off.
    max_series: int = Field(1_000_000, ge=0, alias="METRICS_INGEST_MAX_SERIES")
    max_metric_names: int = Field(10_000, ge=0, alias="METRICS_INGEST_MAX_METRIC_NAMES")
    # A series with no sample for this long frees its slot under the limit.
    series_idle_s: float = Field(3600.0, gt=0, alias="METRICS_INGEST_SERIES_IDLE_S")
    # HTTP ingest. Without a token, POST /api/v1/metrics answers 503 (never open by default).
    api_token: SecretStr | None = Field(None, alias="METRICS_INGEST_API_TOKEN")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, alias="METRICS_INGEST_MAX_BODY_BYTES"
    )
    max_samples_per_request: int = Field(
        10_000, ge=1, le=1_000_000, alias="METRICS_INGEST_MAX_SAMPLES_PER_REQUEST"
    )
    max_future_s: float = Field(300.0, ge=0, alias="METRICS_INGEST_MAX_FUTURE_S")
    max_age_s: float = Field(7 * 24 * 3600.0, gt=0, alias="METRICS_INGEST_MAX_AGE_S")
    # History: day partitions, whole ones dropped after the retention.
    retention_days: int = Field(30, ge=1, le=3650, alias="METRICS_INGEST_RETENTION_DAYS")
    partitions_ahead_days: int = Field(2, ge=0, le=60, alias="METRICS_INGEST_PARTITIONS_AHEAD_DAYS")
    maintenance_interval_s: float = Field(
        3600.0, gt=0, alias="METRICS_INGEST_MAINTENANCE_INTERVAL_S"
    )
