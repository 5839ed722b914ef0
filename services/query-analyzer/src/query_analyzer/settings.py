"""query-analyzer settings (environment, validated at start)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from opsmesh.db.retention import DAY_S
from opsmesh.settings import CommonSettings
from query_analyzer.storage.retention import windows_needed_s


class QueryAnalyzerSettings(CommonSettings):
    http_port: int = Field(8084, alias="QUERY_ANALYZER_HTTP_PORT", ge=1, le=65535)
    window_s: int = Field(60, alias="QUERY_ANALYZER_WINDOW_S", ge=10, le=3600)
    # The analysed database, for EXPLAIN and index advice; use a read-only role.
    target_dsn: SecretStr | None = Field(None, alias="QUERY_ANALYZER_TARGET_DSN")
    # The events' ``database`` name of that target (only its queries are planned there).
    target_database: str | None = Field(None, alias="QUERY_ANALYZER_TARGET_DATABASE")
    statement_timeout_ms: int = Field(
        5_000, alias="QUERY_ANALYZER_STATEMENT_TIMEOUT_MS", ge=10, le=600_000
    )
    explain_analyze: bool = Field(False, alias="QUERY_ANALYZER_EXPLAIN_ANALYZE")
    analysis_interval_s: float = Field(300.0, alias="QUERY_ANALYZER_ANALYSIS_INTERVAL_S", gt=0)
    slow_mean_ms: float = Field(100.0, alias="QUERY_ANALYZER_SLOW_MEAN_MS", ge=0)
    n_plus_one_min_repeats: int = Field(5, alias="QUERY_ANALYZER_N_PLUS_ONE_MIN_REPEATS", ge=2)
    n_plus_one_min_total_ms: float = Field(
        50.0, alias="QUERY_ANALYZER_N_PLUS_ONE_MIN_TOTAL_MS", ge=0
    )
    # A trace is read for N+1 runs once none of its queries arrived for this long.
    trace_settle_s: float = Field(5.0, alias="QUERY_ANALYZER_TRACE_SETTLE_S", ge=0)
    # How long after a slow-route window's end its late profiles still count (the window's
    # signal waits that long).
    slow_route_grace_s: float = Field(
        10.0, alias="QUERY_ANALYZER_SLOW_ROUTE_GRACE_S", ge=0, le=3600
    )
    trace_buffer_spans: int = Field(200_000, alias="QUERY_ANALYZER_TRACE_BUFFER_SPANS", gt=0)
    regression_factor: float = Field(2.0, alias="QUERY_ANALYZER_REGRESSION_FACTOR", gt=1)
    min_cost_savings: float = Field(0.5, alias="QUERY_ANALYZER_MIN_COST_SAVINGS", gt=0, lt=1)
    # Per-window statistics are kept this long (at least what the analysis reads back);
    # fingerprints' totals, findings, plans and advice not seen again for this long go.
    window_retention_days: float = Field(
        14.0, gt=0, le=3650, alias="QUERY_ANALYZER_WINDOW_RETENTION_DAYS"
    )
    retention_days: float = Field(30.0, gt=0, le=3650, alias="QUERY_ANALYZER_RETENTION_DAYS")

    @model_validator(mode="after")
    def _windows_cover_the_analysis(self) -> QueryAnalyzerSettings:
        needed = windows_needed_s(self.window_s) / DAY_S
        if self.window_retention_days < needed:
            raise ValueError(
                f"QUERY_ANALYZER_WINDOW_RETENTION_DAYS must be at least {needed:.3g} with"
                f" QUERY_ANALYZER_WINDOW_S={self.window_s}: regressions compare against"
                " baseline windows that far back"
            )
        return self
