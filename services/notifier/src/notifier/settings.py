"""notifier settings (environment, validated at start)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from notifier.receivers.config import TemplateLanguage
from opsmesh.db.retention import NOTIFICATION_REDELIVERY_DAYS
from opsmesh.settings import CommaList, CommonSettings
from opsmesh.topics import CDN_PURGES, GROUP_NOTIFIER, GROUP_NOTIFIER_CDN_PURGES, NOTIFICATIONS


class NotifierSettings(CommonSettings):
    http_port: int = Field(8083, alias="NOTIFIER_HTTP_PORT", ge=1, le=65535)
    receivers_file: str | None = Field(None, alias="NOTIFIER_RECEIVERS_FILE")
    default_webhook_url: str | None = Field(None, alias="NOTIFIER_DEFAULT_WEBHOOK_URL")
    # How often the receivers file's hash is compared with the loaded one; a change
    # reloads it as ``POST /-/reload`` does, so every replica picks it up. 0: only on
    # ``POST /-/reload`` or SIGHUP.
    config_check_s: float = Field(5.0, ge=0, alias="NOTIFIER_CONFIG_CHECK_S")
    # Tokens for ``POST /-/reload`` (``token:write``; the alert-engine's format). None:
    # the endpoint refuses every request (SIGHUP and the file watch still reload).
    api_tokens: SecretStr | None = Field(None, alias="NOTIFIER_API_TOKENS")
    api_tokens_file: str | None = Field(None, alias="NOTIFIER_API_TOKENS_FILE")
    # How the receivers file's templates are written: "go" (Alertmanager's), "jinja2"
    # (opsmesh's), or "auto": go for an Alertmanager configuration (a file with a `route`
    # or `templates`), jinja2 for a file of `receivers` alone.
    template_language: Literal["auto", "go", "jinja2"] = Field(
        "auto", alias="NOTIFIER_TEMPLATE_LANGUAGE"
    )
    # The Go renderer of Alertmanager templates (default: the one `make deps` builds).
    amtemplate_bin: str | None = Field(None, alias="NOTIFIER_AMTEMPLATE_BIN")
    amtemplate_workers: int = Field(2, ge=1, le=32, alias="NOTIFIER_AMTEMPLATE_WORKERS")
    # Largest rendered field (bytes). Alertmanager's default email is ~2.6 KB per alert, so
    # the default fits a group of 1,000 alerts (the most one notification carries).
    amtemplate_max_output_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, alias="NOTIFIER_AMTEMPLATE_MAX_OUTPUT_BYTES"
    )
    # Address space one renderer process may add while rendering (its memory budget).
    amtemplate_max_memory_mb: int = Field(
        256, ge=32, le=16_384, alias="NOTIFIER_AMTEMPLATE_MAX_MEMORY_MB"
    )
    # Networks a webhook may reach although they are loopback/private (e.g. 127.0.0.0/8 in dev).
    allowed_networks: CommaList[str] = Field((), alias="NOTIFIER_ALLOWED_NETWORKS")
    # Extra CA bundle to trust (a private PagerDuty/Slack proxy, tests); verification stays on.
    ca_file: str | None = Field(None, alias="NOTIFIER_CA_FILE")
    send_timeout_s: float = Field(10.0, gt=0, le=120, alias="NOTIFIER_SEND_TIMEOUT_S")
    retry_initial_s: float = Field(0.5, gt=0, alias="NOTIFIER_RETRY_INITIAL_S")
    retry_max_s: float = Field(30.0, gt=0, alias="NOTIFIER_RETRY_MAX_S")
    # Counted from when the notifier takes the request. Retries wait in the destination's
    # lane, not in the consume loop, so this is not bound by max.poll.interval.
    retry_deadline_s: float = Field(120.0, gt=0, le=86_400, alias="NOTIFIER_RETRY_DEADLINE_S")
    lane_concurrency: int = Field(8, ge=1, le=256, alias="NOTIFIER_LANE_CONCURRENCY")
    lane_max_pending: int = Field(10_000, ge=1, alias="NOTIFIER_LANE_MAX_PENDING")
    breaker_failures: int = Field(5, ge=1, alias="NOTIFIER_BREAKER_FAILURES")
    breaker_open_s: float = Field(10.0, gt=0, alias="NOTIFIER_BREAKER_OPEN_S")
    slack_rate_per_s: float = Field(1.0, gt=0, alias="NOTIFIER_SLACK_RATE_PER_S")
    # Redis answers a send's rate-limit reservation within this, or the sender keeps the
    # limit in process (per replica) and asks Redis again after the retry time.
    rate_limit_timeout_s: float = Field(1.0, gt=0, le=30, alias="NOTIFIER_RATE_LIMIT_TIMEOUT_S")
    rate_limit_retry_s: float = Field(5.0, gt=0, alias="NOTIFIER_RATE_LIMIT_RETRY_S")
    requests_topic: str = Field(NOTIFICATIONS.name, alias="NOTIFIER_REQUESTS_TOPIC")
    consumer_group: str = Field(GROUP_NOTIFIER, alias="NOTIFIER_CONSUMER_GROUP")
    # The delivery log (and Slack message references) are kept this long; at least the
    # redelivery window (notifier/delivery/retention.py says why).
    delivery_retention_days: float = Field(
        35.0, gt=0, le=3650, alias="NOTIFIER_DELIVERY_RETENTION_DAYS"
    )

    # CDN purges (``opsmesh.cdn-purges``): the providers, a YAML or JSON file in the SDK's
    # format (opsmesh_client.cdn.config). None: the purge consumer does not run.
    cdn_providers_file: str | None = Field(None, alias="NOTIFIER_CDN_PROVIDERS_FILE")
    cdn_purges_topic: str = Field(CDN_PURGES.name, alias="NOTIFIER_CDN_PURGES_TOPIC")
    cdn_consumer_group: str = Field(GROUP_NOTIFIER_CDN_PURGES, alias="NOTIFIER_CDN_CONSUMER_GROUP")
    # Purge calls in flight per provider (each purge retries within
    # NOTIFIER_RETRY_DEADLINE_S, with NOTIFIER_RETRY_INITIAL_S/MAX_S backoff).
    cdn_concurrency: int = Field(4, ge=1, le=64, alias="NOTIFIER_CDN_CONCURRENCY")

    # The daily summary email (empty: off). SMTP settings are the summary's own.
    summary_recipients: CommaList[str] = Field((), alias="ALERT_SUMMARY_RECIPIENTS")
    summary_smarthost: str = Field("127.0.0.1:25", alias="NOTIFIER_SUMMARY_SMARTHOST")
    summary_from: str = Field("opsmesh@localhost", alias="NOTIFIER_SUMMARY_FROM")
    summary_username: str | None = Field(None, alias="NOTIFIER_SUMMARY_USERNAME")
    summary_password: SecretStr | None = Field(None, alias="NOTIFIER_SUMMARY_PASSWORD")
    summary_require_tls: bool = Field(True, alias="NOTIFIER_SUMMARY_REQUIRE_TLS")
    summary_hour_utc: int = Field(8, ge=0, le=23, alias="NOTIFIER_SUMMARY_HOUR_UTC")

    @model_validator(mode="after")
    def _outlives_redelivery(self) -> NotifierSettings:
        if self.delivery_retention_days < NOTIFICATION_REDELIVERY_DAYS:
            floor = NOTIFICATION_REDELIVERY_DAYS
            raise ValueError(
                f"NOTIFIER_DELIVERY_RETENTION_DAYS must be at least {floor:g}:"
                " a request can come back (DLQ replay, consumer offsets reset) as long as"
                " its topic keeps it, and must find its delivered row"
            )
        return self

    def template_language_choice(self) -> TemplateLanguage | None:
        return (
            None if self.template_language == "auto" else TemplateLanguage(self.template_language)
        )
