"""alert-engine settings (environment, validated at start)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from alert_engine.api.status import DEFAULT_COMPAT_VERSION, compat_version
from alert_engine.core.runbooks import DEFAULT_RUNBOOK_BASE_URL
from opsmesh.db.retention import NOTIFICATION_REDELIVERY_DAYS
from opsmesh.durations import parse_duration
from opsmesh.settings import CommaList, CommonSettings


class AlertEngineSettings(CommonSettings):
    http_port: int = Field(8082, alias="ALERT_ENGINE_HTTP_PORT", ge=1, le=65535)
    rules_files: CommaList[str] = Field((), alias="ALERT_ENGINE_RULES_FILES")
    # An Alertmanager configuration file (route, inhibit_rules, time_intervals, receivers).
    config_file: str | None = Field(None, alias="ALERT_ENGINE_CONFIG_FILE")
    # Without a config file: one route to one receiver, timers from these settings.
    receiver: str = Field("default", alias="ALERT_ENGINE_RECEIVER")
    group_by: CommaList[str] = Field(("alertname",), alias="ALERT_ENGINE_GROUP_BY")
    group_wait_s: float = Field(30.0, ge=0, alias="ALERT_ENGINE_GROUP_WAIT")
    group_interval_s: float = Field(300.0, gt=0, alias="ALERT_ENGINE_GROUP_INTERVAL")
    repeat_interval_s: float = Field(4 * 3600.0, gt=0, alias="ALERT_ENGINE_REPEAT_INTERVAL")
    resolve_timeout_s: float = Field(300.0, gt=0, alias="ALERT_ENGINE_RESOLVE_TIMEOUT")
    external_url: str = Field("http://127.0.0.1:8082", alias="ALERT_ENGINE_EXTERNAL_URL")
    # Where runbooks/ is published: a rule's ``runbook_url: runbooks/<name>.md`` reaches
    # notifications as <base>/<name>.md, a link the receiver can click.
    runbook_base_url: str = Field(DEFAULT_RUNBOOK_BASE_URL, alias="OPSMESH_RUNBOOK_BASE_URL")
    api_tokens: SecretStr | None = Field(None, alias="ALERT_ENGINE_API_TOKENS")
    api_tokens_file: str | None = Field(None, alias="ALERT_ENGINE_API_TOKENS_FILE")
    read_requires_token: bool = Field(False, alias="ALERT_ENGINE_READ_REQUIRES_TOKEN")
    # /api/v2/status shows the configuration (secrets masked as "<secret>"); it needs a
    # read token unless opened here.
    public_status: bool = Field(False, alias="ALERT_ENGINE_PUBLIC_STATUS")
    # The Alertmanager release /api/v2/status reports (amtool warns when its major.minor
    # differs from its own); only releases the API is tested against (api/status.py).
    am_compat_version: str = Field(DEFAULT_COMPAT_VERSION, alias="ALERT_ENGINE_AM_COMPAT_VERSION")
    receiver_rate_per_minute: float = Field(
        0.0, ge=0, alias="ALERT_ENGINE_RECEIVER_RATE_PER_MINUTE"
    )
    receiver_burst: int = Field(10, ge=1, alias="ALERT_ENGINE_RECEIVER_BURST")
    # Per receiver: "pager=10/20,chat=60/60" (notifications per minute / burst).
    receiver_limits: str = Field("", alias="ALERT_ENGINE_RECEIVER_LIMITS")
    # Redis answers a flush's rate-limit check within this, or the flush decides with
    # in-process buckets (per replica) and asks Redis again after the retry time.
    rate_limit_timeout_s: float = Field(1.0, gt=0, le=30, alias="ALERT_ENGINE_RATE_LIMIT_TIMEOUT_S")
    rate_limit_retry_s: float = Field(30.0, gt=0, alias="ALERT_ENGINE_RATE_LIMIT_RETRY_S")
    alerts_per_alertname: int = Field(0, ge=0, alias="ALERT_ENGINE_ALERTS_PER_ALERTNAME")
    # Alert history, rate-limited flushes and expired silences are kept this long.
    retention_days: float = Field(30.0, gt=0, le=3650, alias="ALERT_RETENTION_DAYS")
    # Notification log entries of groups that are gone; longer than the notifier's
    # NOTIFIER_DELIVERY_RETENTION_DAYS (pipeline/retention.py says why).
    notification_log_retention_days: float = Field(
        45.0, gt=0, le=3650, alias="ALERT_ENGINE_NOTIFICATION_LOG_RETENTION_DAYS"
    )
    # How long an absence rule keeps expecting a series that went silent (a rule's own
    # `forget_after` overrides it); then its alert resolves and its series_seen row goes.
    absence_forget_after_days: float = Field(
        1.0, gt=0, le=3650, alias="ALERT_ENGINE_ABSENCE_FORGET_AFTER_DAYS"
    )
    flush_tick_s: float = Field(0.1, gt=0, le=5, alias="ALERT_ENGINE_FLUSH_TICK_S")
    # How often the configuration file's hash is compared with the loaded one; a change
    # reloads it as ``POST /-/reload`` does, so every replica picks it up. 0: only on
    # ``POST /-/reload`` or SIGHUP.
    config_check_s: float = Field(5.0, ge=0, alias="ALERT_ENGINE_CONFIG_CHECK_S")
    # How often a replica re-reads alerts and silences other replicas wrote.
    sync_every_s: float = Field(1.0, gt=0, alias="ALERT_ENGINE_SYNC_EVERY_S")
    maintenance_every_s: float = Field(60.0, gt=0, alias="ALERT_ENGINE_MAINTENANCE_EVERY_S")
    # false: this process ingests (API, rules) but owns no aggregation groups, leaving
    # the group owners' work (persist, group, flush) to the other replicas, so ingest has
    # an event loop (and a core) to itself.
    owns_groups: bool = Field(True, alias="ALERT_ENGINE_OWNS_GROUPS")

    @model_validator(mode="after")
    def _log_outlives_delivery_keys(self) -> AlertEngineSettings:
        if self.notification_log_retention_days <= NOTIFICATION_REDELIVERY_DAYS:
            raise ValueError(
                "ALERT_ENGINE_NOTIFICATION_LOG_RETENTION_DAYS must be more than"
                f" {NOTIFICATION_REDELIVERY_DAYS:g} (and than NOTIFIER_DELIVERY_RETENTION_DAYS):"
                " a group whose entry is purged reuses idempotency keys the notifier must"
                " have forgotten"
            )
        return self

    @field_validator(
        "group_wait_s", "group_interval_s", "repeat_interval_s", "resolve_timeout_s", mode="before"
    )
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator("runbook_base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("OPSMESH_RUNBOOK_BASE_URL must be an http:// or https:// URL")
        return value

    @field_validator("am_compat_version")
    @classmethod
    def _compat_version(cls, value: str) -> str:
        return compat_version(value)  # UnsupportedCompatVersion is a ValueError
