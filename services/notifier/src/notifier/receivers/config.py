"""Receivers: names that alert-engine routes to, mapped onto channels.

The file format follows Alertmanager's ``receivers`` section (``email_configs``,
``slack_configs``, ``pagerduty_configs``, ``webhook_configs``, ``opsgenie_configs``,
``msteams_configs``), so an existing
configuration's receivers carry over. A receiver with several integrations delivers to
each; every integration has a stable id (``<kind>-<index>``) under which its delivery is
recorded, so a retry never resends the integrations that already succeeded.

Secrets (SMTP passwords, Slack tokens and webhook URLs, PagerDuty routing keys, webhook
signing secrets, Opsgenie API keys, Microsoft Teams webhook URLs) are ``SecretStr``: they
print as ``**********`` in logs and errors.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
from pydantic import SecretStr
from yarl import URL

from opsmesh.send_resolved import SEND_RESOLVED_DEFAULT


class TemplateLanguage(enum.StrEnum):
    """How a receivers file's templates are written. ``go``: Alertmanager's (text/template
    over Alertmanager's data, its functions and default templates, rendered by
    ``opsmesh-amtemplate``); ``jinja2``: opsmesh's own (the bounded Jinja2 sandbox)."""

    GO = "go"
    JINJA2 = "jinja2"


class IntegrationKind(enum.StrEnum):
    EMAIL = "email"
    SLACK = "slack"
    PAGERDUTY = "pagerduty"
    WEBHOOK = "webhook"
    OPSGENIE = "opsgenie"
    MSTEAMS = "msteams"


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


class TLSConfig(msgspec.Struct, forbid_unknown_fields=False):
    """prometheus/common's ``tls_config`` (files are made absolute by the loader)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: SecretStr | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False
    min_version: str | None = None
    max_version: str | None = None


class BasicAuth(msgspec.Struct, forbid_unknown_fields=False):
    username: str = ""
    password: SecretStr | None = None


class Authorization(msgspec.Struct, forbid_unknown_fields=False):
    type: str = "Bearer"
    credentials: SecretStr | None = None


class HTTPConfig(msgspec.Struct, forbid_unknown_fields=False):
    """An integration's ``http_config``: the parts the notifier implements (bearer, basic
    and ``authorization`` credentials, TLS); ``UNSUPPORTED`` ones are refused at load."""

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    bearer_token: SecretStr | None = None
    tls_config: TLSConfig | None = None
    follow_redirects: bool | None = None  # redirects are always refused (safe_http)
    enable_http2: bool | None = None  # HTTP/1.1 is always used
    oauth2: Any = None
    proxy_url: str | None = None
    no_proxy: str | None = None
    proxy_from_environment: bool | None = None
    proxy_connect_header: Any = None
    http_headers: Any = None

    UNSUPPORTED: ClassVar[tuple[str, ...]] = (
        "oauth2",
        "proxy_url",
        "no_proxy",
        "proxy_from_environment",
        "proxy_connect_header",
        "http_headers",
    )

    def unsupported(self) -> list[str]:
        return [name for name in self.UNSUPPORTED if getattr(self, name)]


class WebhookConfig(msgspec.Struct, forbid_unknown_fields=False):
    url: str
    # Standard Webhooks secrets ("whsec_<base64>"); several may be active during rotation.
    secrets: list[SecretStr] = []
    send_resolved: bool = SEND_RESOLVED_DEFAULT["webhook"]
    http_config: HTTPConfig | None = None
    # Alertmanager's ``max_alerts``: at most this many alerts in a payload (0: all).
    max_alerts: int = 0

    def __post_init__(self) -> None:
        # Tokens often ride in a webhook URL's query: not shown in the error.
        _check_url(self.url, "webhook_configs.url", secret=True)


class EmailConfig(msgspec.Struct, forbid_unknown_fields=False, rename={"from_": "from"}):
    to: list[str]
    from_: str
    smarthost: str  # "host:port"
    cc: list[str] = []
    # Alertmanager's templated headers (Go templates only); Subject, To and From default to
    # Alertmanager's subject template and the addresses above.
    headers: dict[str, str] = {}
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    require_tls: bool = True  # STARTTLS (Alertmanager's default)
    tls: bool = False  # implicit TLS from the first byte (port 465)
    # Templates; None: the defaults (opsmesh's for Jinja2, Alertmanager's for Go). ``subject``
    # is Jinja2's; Go templates set the ``Subject`` header, as in Alertmanager.
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    send_resolved: bool = SEND_RESOLVED_DEFAULT["email"]

    def __post_init__(self) -> None:
        host, _, port = self.smarthost.rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"email_configs.smarthost: {self.smarthost!r} is not host:port")


class SlackConfirm(msgspec.Struct, forbid_unknown_fields=False):
    title: str = ""
    text: str = ""
    ok_text: str = ""
    dismiss_text: str = ""


class SlackAction(msgspec.Struct, forbid_unknown_fields=False):
    type: str = ""
    text: str = ""
    url: str = ""
    style: str = ""
    name: str = ""
    value: str = ""
    confirm: SlackConfirm | None = None


class SlackField(msgspec.Struct, forbid_unknown_fields=False):
    title: str = ""
    value: str = ""
    short: bool | None = None


class SlackConfig(msgspec.Struct, forbid_unknown_fields=False):
    # Incoming webhook URL, or a bot token + channel for chat.postMessage/chat.update.
    api_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_base_url: str = "https://slack.com/api/"
    # Templates; None: the defaults (opsmesh's for Jinja2, Alertmanager's for Go). The
    # fields after ``text`` are Alertmanager's attachment fields, used with Go templates.
    title: str | None = None
    text: str | None = None
    title_link: str | None = None
    pretext: str | None = None
    fallback: str | None = None
    footer: str | None = None
    color: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    callback_id: str | None = None
    image_url: str | None = None
    thumb_url: str | None = None
    message_text: str | None = None
    fields: list[SlackField] = []
    short_fields: bool = False
    actions: list[SlackAction] = []
    mrkdwn_in: list[str] = []
    link_names: bool = False
    send_resolved: bool = SEND_RESOLVED_DEFAULT["slack"]
    http_config: HTTPConfig | None = None

    def __post_init__(self) -> None:
        if (self.api_url is None) == (self.token is None):
            raise ValueError("slack_configs: set exactly one of api_url or token")
        if self.token is not None and not self.channel:
            raise ValueError("slack_configs: token needs a channel")
        if self.api_url is not None:
            _check_url(self.api_url.get_secret_value(), "slack_configs.api_url", secret=True)
        _check_url(self.api_base_url, "slack_configs.api_base_url")


class PagerDutyLink(msgspec.Struct, forbid_unknown_fields=False):
    href: str = ""
    text: str = ""


class PagerDutyImage(msgspec.Struct, forbid_unknown_fields=False):
    src: str = ""
    alt: str = ""
    href: str = ""


class PagerDutyConfig(msgspec.Struct, forbid_unknown_fields=False, rename={"class_": "class"}):
    routing_key: SecretStr
    url: str = "https://events.pagerduty.com/v2/enqueue"
    # Jinja2: used when the alerts carry no severity label. Go: a template, as Alertmanager's.
    severity: str = "error"
    source: str | None = None  # Jinja2: "opsmesh"; Go: the client's template
    summary: str | None = None  # Jinja2's template of the event summary
    # Alertmanager's templated fields (Go templates); None: Alertmanager's defaults.
    description: str | None = None
    client: str | None = None
    client_url: str | None = None
    details: dict[str, Any] | None = None
    class_: str | None = None
    component: str | None = None
    group: str | None = None
    links: list[PagerDutyLink] = []
    images: list[PagerDutyImage] = []
    send_resolved: bool = SEND_RESOLVED_DEFAULT["pagerduty"]
    http_config: HTTPConfig | None = None
    # Events API v2 allows about 120 events/min per routing key.
    rate_per_min: float = 120.0

    def __post_init__(self) -> None:
        _check_url(self.url, "pagerduty_configs.url")
        # Refused as the file loads, not at the first send (a rate of 0 cannot be a bucket).
        if not (math.isfinite(self.rate_per_min) and self.rate_per_min > 0):
            raise ValueError(
                f"pagerduty_configs.rate_per_min: {self.rate_per_min} must be a positive number"
            )


class OpsGenieResponder(msgspec.Struct, forbid_unknown_fields=False):
    id: str = ""
    name: str = ""
    username: str = ""
    type: str = ""


class OpsGenieConfig(msgspec.Struct, forbid_unknown_fields=False):
    """Alertmanager's ``opsgenie_configs`` (Alert API v2). Every text field is a Go
    template; None: Alertmanager's default (``opsgenie.default.*``) or nothing."""

    api_key: SecretStr
    api_url: str = "https://api.opsgenie.com/"  # the loader makes it end in "/"
    message: str | None = None
    description: str | None = None
    source: str | None = None
    details: dict[str, str] = {}
    entity: str = ""
    responders: list[OpsGenieResponder] = []
    actions: str = ""
    tags: str = ""
    note: str = ""
    priority: str = ""
    update_alerts: bool = False
    send_resolved: bool = SEND_RESOLVED_DEFAULT["opsgenie"]
    http_config: HTTPConfig | None = None

    def __post_init__(self) -> None:
        _check_url(self.api_url, "opsgenie_configs.api_url")


class MSTeamsConfig(msgspec.Struct, forbid_unknown_fields=False):
    """Alertmanager's ``msteams_configs`` (an incoming webhook, MessageCard payload)."""

    webhook_url: SecretStr
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    send_resolved: bool = SEND_RESOLVED_DEFAULT["msteams"]
    http_config: HTTPConfig | None = None

    def __post_init__(self) -> None:
        # The URL's path is the secret: not shown in the error.
        _check_url(self.webhook_url.get_secret_value(), "msteams_configs.webhook_url", secret=True)


IntegrationConfig = (
    EmailConfig | SlackConfig | PagerDutyConfig | WebhookConfig | OpsGenieConfig | MSTeamsConfig
)
# Integrations whose fields are Alertmanager (Go) templates only: no Jinja2 defaults exist.
GO_TEMPLATES_ONLY = (IntegrationKind.OPSGENIE, IntegrationKind.MSTEAMS)


class ReceiverConfig(msgspec.Struct, forbid_unknown_fields=False):
    name: str
    email_configs: list[EmailConfig] = []
    slack_configs: list[SlackConfig] = []
    pagerduty_configs: list[PagerDutyConfig] = []
    webhook_configs: list[WebhookConfig] = []
    opsgenie_configs: list[OpsGenieConfig] = []
    msteams_configs: list[MSTeamsConfig] = []

    def integrations(self) -> list[tuple[str, IntegrationKind, IntegrationConfig]]:
        """(id, kind, config) for each integration; the id is stable while the file's order
        of a kind's entries is."""
        out: list[tuple[str, IntegrationKind, IntegrationConfig]] = []
        groups: list[tuple[IntegrationKind, list[Any]]] = [
            (IntegrationKind.EMAIL, self.email_configs),
            (IntegrationKind.SLACK, self.slack_configs),
            (IntegrationKind.PAGERDUTY, self.pagerduty_configs),
            (IntegrationKind.WEBHOOK, self.webhook_configs),
            (IntegrationKind.OPSGENIE, self.opsgenie_configs),
            (IntegrationKind.MSTEAMS, self.msteams_configs),
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
    language: TemplateLanguage = TemplateLanguage.JINJA2
    # The file's ``templates:`` globs, absolute (relative ones are taken from the file's
    # directory, as Alertmanager takes them); Go templates only.
    templates: tuple[str, ...] = ()

    def get(self, name: str) -> ReceiverConfig | None:
        return self.by_name.get(name)


class ReceiversError(ValueError):
    pass
