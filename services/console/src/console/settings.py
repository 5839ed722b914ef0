"""console settings (environment, validated at start)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from opsmesh.settings import CommonSettings


class ConsoleSettings(CommonSettings):
    http_port: int = Field(8086, alias="CONSOLE_HTTP_PORT", ge=1, le=65535)
    # The services the console reads, each only through its REST API.
    alert_engine_url: str = Field("http://127.0.0.1:8082", alias="CONSOLE_ALERT_ENGINE_URL")
    notifier_url: str = Field("http://127.0.0.1:8083", alias="CONSOLE_NOTIFIER_URL")
    query_analyzer_url: str = Field("http://127.0.0.1:8084", alias="CONSOLE_QUERY_ANALYZER_URL")
    health_aggregator_url: str = Field(
        "http://127.0.0.1:8085", alias="CONSOLE_HEALTH_AGGREGATOR_URL"
    )
    # The console's own reads of the alert-engine (the alert feed, silences, history,
    # explain) send this token, for an engine with ALERT_ENGINE_READ_REQUIRES_TOKEN=true.
    alert_engine_read_token: SecretStr | None = Field(None, alias="CONSOLE_ALERT_ENGINE_READ_TOKEN")
    # Login tokens, in the alert-engine's format (``token:read;token2:write``). A write
    # token is also sent to the alert-engine with each write, which checks it again.
    api_tokens: SecretStr = Field(SecretStr(""), alias="CONSOLE_API_TOKENS")
    api_tokens_file: str | None = Field(None, alias="CONSOLE_API_TOKENS_FILE")
    # A session lasts this long after its login.
    session_ttl_s: float = Field(12 * 3600.0, gt=0, le=7 * 86400, alias="CONSOLE_SESSION_TTL_S")
    # Set behind HTTPS: the session cookie then travels only over TLS.
    cookie_secure: bool = Field(False, alias="CONSOLE_COOKIE_SECURE")
    # How often the alert groups are read from the alert-engine; pages and live updates
    # are served from the latest read, so a page never waits on a 10,000-alert listing.
    poll_s: float = Field(2.0, gt=0, le=300, alias="CONSOLE_POLL_S")
    # Each call to another service gives up after this long (the page says which failed).
    upstream_timeout_s: float = Field(5.0, gt=0, le=60, alias="CONSOLE_UPSTREAM_TIMEOUT_S")
    # The runbooks served at /runbooks (the repository's runbooks/ when started from it;
    # the image copies them to /app/runbooks), the targets of notifications' runbook links.
    runbooks_dir: str = Field("runbooks", alias="CONSOLE_RUNBOOKS_DIR")
    groups_per_page: int = Field(50, ge=1, le=1000, alias="CONSOLE_GROUPS_PER_PAGE")
    alerts_per_group: int = Field(25, ge=1, le=10_000, alias="CONSOLE_ALERTS_PER_GROUP")
