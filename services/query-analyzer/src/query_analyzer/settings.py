"""query-analyzer settings (environment, validated at start)."""

from __future__ import annotations

from pydantic import Field

from opsmesh.settings import CommonSettings


class QueryAnalyzerSettings(CommonSettings):
    http_port: int = Field(8084, alias="QUERY_ANALYZER_HTTP_PORT", ge=1, le=65535)
