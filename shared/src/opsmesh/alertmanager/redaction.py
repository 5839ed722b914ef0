"""Secrets in an Alertmanager configuration, masked as Alertmanager masks them.

Alertmanager's ``/api/v2/status`` shows the configuration with every field of type
``Secret``, ``SecretURL`` or ``SecretTemplateURL`` printed as ``<secret>``. The same fields
are listed here once (``SECRET_FIELDS``: Alertmanager's ``config/config.go``,
``config/notifiers.go``, ``notify/*/config.go``, prometheus/common's
``HTTPClientConfig``; plus opsmesh's own: a Slack bot ``token``, webhook signing
``secrets``) as paths in the parsed document, and the document is walked: a secret is
found by where it is, never by a pattern over the text, so a secret with unusual
characters or a YAML anchor cannot slip through.

YAML's own error messages quote the offending line; ``opsmesh.yaml_errors`` keeps only
the position, so an error in a line holding a routing key does not print the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import yaml

MASK = "<secret>"  # Alertmanager's rendering of a set secret

_INTEGRATION_SECRETS: dict[str, tuple[str, ...]] = {
    "email_configs": ("auth_password", "auth_secret"),
    "slack_configs": ("api_url", "app_token", "token"),
    "pagerduty_configs": ("routing_key", "service_key"),
    "webhook_configs": ("url", "secrets"),
    "opsgenie_configs": ("api_key",),
    "victorops_configs": ("api_key",),
    "wechat_configs": ("api_secret",),
    "pushover_configs": ("user_key", "token"),
    "telegram_configs": ("bot_token",),
    "discord_configs": ("webhook_url",),
    "msteams_configs": ("webhook_url",),
    "msteamsv2_configs": ("webhook_url",),
    "mattermost_configs": ("webhook_url",),
    "rocketchat_configs": ("token", "token_id"),
    "incidentio_configs": ("alert_source_token",),
    "sns_configs": ("sigv4.secret_key",),
}
_GLOBAL_SECRETS = (
    "smtp_auth_password",
    "smtp_auth_secret",
    "slack_api_url",
    "slack_app_token",
    "opsgenie_api_key",
    "wechat_api_secret",
    "victorops_api_key",
    "telegram_bot_token",
    "rocketchat_token",
    "rocketchat_token_id",
    "mattermost_webhook_url",
)
# prometheus/common HTTPClientConfig, wherever one appears (global, each integration,
# an OAuth2 block's own TLS and proxy settings).
_HTTP_SECRETS = (
    "**.http_config.basic_auth.password",
    "**.http_config.authorization.credentials",
    "**.http_config.bearer_token",
    "**.oauth2.client_secret",
    "**.oauth2.client_certificate_key",
    "**.tls_config.key",
    "**.http_headers.*.secrets",
    "**.proxy_connect_header.*",
)

# ``*`` is one key or list index, ``**`` any number of them.
SECRET_FIELDS: tuple[str, ...] = (
    *(f"global.{name}" for name in _GLOBAL_SECRETS),
    *(
        f"receivers.*.{section}.*.{name}"
        for section, names in _INTEGRATION_SECRETS.items()
        for name in names
    ),
    *_HTTP_SECRETS,
)

# A webhook ``url`` was a plain URL before Alertmanager 0.26, and amtool 0.25 (Debian's)
# parses ``config.original`` back into its own configuration for ``config routes show``:
# "<secret>" alone is not a URL to it. Such fields keep their scheme and host and mask the
# rest (user info, path, query), which every amtool reads and which hides a token there.
URL_SECRET_FIELDS: tuple[str, ...] = ("receivers.*.webhook_configs.*.url",)

Path = tuple[str, ...]
_PATTERNS: tuple[Path, ...] = tuple(tuple(p.split(".")) for p in SECRET_FIELDS)
_URL_PATTERNS: tuple[Path, ...] = tuple(tuple(p.split(".")) for p in URL_SECRET_FIELDS)


def _matches(pattern: Sequence[str], path: Sequence[str]) -> bool:
    if not pattern:
        return not path
    head = pattern[0]
    if head == "**":
        return any(_matches(pattern[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return (head in ("*", path[0])) and _matches(pattern[1:], path[1:])


def is_secret(path: Sequence[str]) -> bool:
    return any(_matches(pattern, path) for pattern in _PATTERNS)


def _masked_url(value: Any) -> Any:
    """``https://host:port/<secret>``; ``<secret>`` for anything that is not such a URL."""
    if value is None or value == "":
        return value
    try:
        parts = urlsplit(str(value))
        host, port = parts.hostname, parts.port
    except ValueError:
        return MASK
    if parts.scheme not in ("http", "https") or not host:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}/{MASK}"


def _masked(value: Any) -> Any:
    """As ``Secret.MarshalYAML``: empty stays empty; a list of secrets is masked item by
    item; anything else set becomes ``<secret>``."""
    if value is None or value == "":
        return value
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return MASK


def redact(document: Any, path: Path = ()) -> Any:
    """A copy of a parsed configuration with every secret field masked."""
    if path and any(_matches(pattern, path) for pattern in _URL_PATTERNS):
        return _masked_url(document)
    if path and is_secret(path):
        return _masked(document)
    if isinstance(document, Mapping):
        return {key: redact(value, (*path, str(key))) for key, value in document.items()}
    if isinstance(document, list):
        return [redact(item, (*path, str(index))) for index, item in enumerate(document)]
    return document


def redacted_yaml(document: Any) -> str:
    """The configuration as ``config.original`` shows it: YAML, secrets masked."""
    if not document:
        return ""
    return yaml.safe_dump(redact(document), sort_keys=False, allow_unicode=True)
