"""Receivers: names that alert-engine routes to, mapped onto channels.

The file format follows Alertmanager's ``receivers`` section (``email_configs``,
``slack_configs``, ``pagerduty_configs``, ``webhook_configs``), so an existing
configuration's receivers carry over. A receiver with several integrations delivers to
each; every integration has a stable id (``<kind>-<index>``) under which its delivery is
recorded, so a retry never resends the integrations that already succeeded.

Secrets (SMTP passwords, Slack tokens and webhook URLs, PagerDuty routing keys, webhook
signing secrets) are ``SecretStr``: they print as ``**********`` in logs and errors.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml
from pydantic import SecretStr
from yarl import URL

from opsmesh.yaml_errors import yaml_error_text


class IntegrationKind(enum.StrEnum):
    EMAIL = "email"
    SLACK = "slack"
    PAGERDUTY = "pagerduty"
    WEBHOOK = "webhook"


def _check_url(url: str, field: str, *, secret: bool = False) -> None:
    """An http(s) URL with a host, or a clear error at load (the URL itself is not
    repeated when it is a secret)."""
    shown = "the URL" if secret else repr(url)
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise ValueError(f"{field}: {shown} is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{field}: {shown} must be an http:// or https:// URL with a host")


class WebhookConfig(msgspec.Struct, forbid_unknown_fields=False):
    url: str
    # Standard Webhooks secrets ("whsec_<base64>"); several may be active during rotation.
    secrets: list[SecretStr] = []
    send_resolved: bool = True

    def __post_init__(self) -> None:
        # Tokens often ride in a webhook URL's query: not shown in the error.
        _check_url(self.url, "webhook_configs.url", secret=True)


class EmailConfig(msgspec.Struct, forbid_unknown_fields=False, rename={"from_": "from"}):
    to: list[str]
    from_: str
    smarthost: str  # "host:port"
    cc: list[str] = []
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    require_tls: bool = True  # STARTTLS (Alertmanager's default)
    tls: bool = False  # implicit TLS from the first byte (port 465)
    # Templates (Jinja2, sandboxed); None: the defaults.
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    send_resolved: bool = False  # Alertmanager's default for email

    def __post_init__(self) -> None:
        host, _, port = self.smarthost.rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"email_configs.smarthost: {self.smarthost!r} is not host:port")


class SlackConfig(msgspec.Struct, forbid_unknown_fields=False):
    # Incoming webhook URL, or a bot token + channel for chat.postMessage/chat.update.
    api_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_base_url: str = "https://slack.com/api/"
    title: str | None = None
    text: str | None = None
    send_resolved: bool = False

    def __post_init__(self) -> None:
        if (self.api_url is None) == (self.token is None):
            raise ValueError("slack_configs: set exactly one of api_url or token")
        if self.token is not None and not self.channel:
            raise ValueError("slack_configs: token needs a channel")
        if self.api_url is not None:
            _check_url(self.api_url.get_secret_value(), "slack_configs.api_url", secret=True)
        _check_url(self.api_base_url, "slack_configs.api_base_url")


class PagerDutyConfig(msgspec.Struct, forbid_unknown_fields=False):
    routing_key: SecretStr
    url: str = "https://events.pagerduty.com/v2/enqueue"
    severity: str = "error"  # when the alerts carry no severity label
    source: str = "opsmesh"
    summary: str | None = None
    send_resolved: bool = True
    # Events API v2 allows about 120 events/min per routing key.
    rate_per_min: float = 120.0

    def __post_init__(self) -> None:
        _check_url(self.url, "pagerduty_configs.url")


IntegrationConfig = EmailConfig | SlackConfig | PagerDutyConfig | WebhookConfig


class ReceiverConfig(msgspec.Struct, forbid_unknown_fields=False):
    name: str
    email_configs: list[EmailConfig] = []
    slack_configs: list[SlackConfig] = []
    pagerduty_configs: list[PagerDutyConfig] = []
    webhook_configs: list[WebhookConfig] = []

    def integrations(self) -> list[tuple[str, IntegrationKind, IntegrationConfig]]:
        """(id, kind, config) for each integration; the id is stable while the file's order
        of a kind's entries is."""
        out: list[tuple[str, IntegrationKind, IntegrationConfig]] = []
        groups: list[tuple[IntegrationKind, list[Any]]] = [
            (IntegrationKind.EMAIL, self.email_configs),
            (IntegrationKind.SLACK, self.slack_configs),
            (IntegrationKind.PAGERDUTY, self.pagerduty_configs),
            (IntegrationKind.WEBHOOK, self.webhook_configs),
        ]
        for kind, configs in groups:
            for index, config in enumerate(configs):
                out.append((f"{kind.value}-{index}", kind, config))
        return out


class ReceiversFile(msgspec.Struct, forbid_unknown_fields=False):
    receivers: list[ReceiverConfig]


@dataclass(frozen=True, slots=True)
class Receivers:
    by_name: dict[str, ReceiverConfig]

    def get(self, name: str) -> ReceiverConfig | None:
        return self.by_name.get(name)


class ReceiversError(ValueError):
    pass


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is SecretStr and isinstance(value, str):
        return SecretStr(value)
    raise NotImplementedError(f"cannot decode {kind}")  # msgspec's dec_hook contract


def parse_receivers(raw: Any, where: str = "receivers") -> dict[str, ReceiverConfig]:
    try:
        parsed = msgspec.convert(raw, ReceiversFile, dec_hook=_dec_hook)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ReceiversError(f"{where}: {exc}") from None
    configs: dict[str, ReceiverConfig] = {}
    for receiver in parsed.receivers:
        if receiver.name in configs:
            raise ReceiversError(f"{where}: receiver {receiver.name!r} defined twice")
        configs[receiver.name] = receiver
    return configs


def load_receivers(path: str | None, default_webhook_url: str | None) -> Receivers:
    configs: dict[str, ReceiverConfig] = {}
    if path:
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ReceiversError(f"{path}: {exc}") from None
        except yaml.YAMLError as exc:
            # PyYAML quotes the line, which may hold a webhook URL or a routing key.
            raise ReceiversError(f"{path}: not valid YAML: {yaml_error_text(exc)}") from None
        configs = parse_receivers(raw, path)
    if default_webhook_url and "default" not in configs:
        configs["default"] = ReceiverConfig(
            name="default", webhook_configs=[WebhookConfig(url=default_webhook_url)]
        )
    return Receivers(configs)
