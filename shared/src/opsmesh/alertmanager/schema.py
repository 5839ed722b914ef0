"""The shape of an Alertmanager configuration file, field by field.

Alertmanager reads its file strictly (``yaml.UnmarshalStrict``): a misspelt field is an
error, not a silently ignored key. These Structs say which fields each section has
(Alertmanager's ``config/config.go``, ``config/notifiers.go`` and prometheus/common's
``HTTPClientConfig``), plus the few opsmesh extensions named in
docs/alertmanager-compat.md. They check shape only; what a value means (a duration, a
matcher, a route tree) is checked by the loader and the alert-engine.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class TLSConfig(_Strict):
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ca_ref: str | None = None
    cert_ref: str | None = None
    key_ref: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool | None = None
    min_version: str | None = None
    max_version: str | None = None


class BasicAuth(_Strict):
    username: str | None = None
    username_file: str | None = None
    password: str | None = None
    password_file: str | None = None


class Authorization(_Strict):
    type: str | None = None
    credentials: str | None = None
    credentials_file: str | None = None


class OAuth2(_Strict):
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_file: str | None = None
    scopes: list[str] | None = None
    client_certificate_key: str | None = None
    client_certificate_key_id: str | None = None
    client_certificate_key_file: str | None = None
    signature_algorithm: str | None = None
    iss: str | None = None
    audience: str | None = None
    claims: dict[str, Any] | None = None
    grant_type: str | None = None
    token_url: str | None = None
    endpoint_params: dict[str, str] | None = None
    tls_config: TLSConfig | None = None
    proxy_url: str | None = None
    no_proxy: str | None = None
    proxy_from_environment: bool | None = None
    proxy_connect_header: dict[str, list[str]] | None = None


class HTTPConfig(_Strict):
    authorization: Authorization | None = None
    basic_auth: BasicAuth | None = None
    oauth2: OAuth2 | None = None
    bearer_token: str | None = None
    bearer_token_file: str | None = None
    tls_config: TLSConfig | None = None
    proxy_url: str | None = None
    no_proxy: str | None = None
    proxy_from_environment: bool | None = None
    proxy_connect_header: dict[str, list[str]] | None = None
    follow_redirects: bool | None = None
    enable_http2: bool | None = None
    http_headers: dict[str, Any] | None = None  # Alertmanager >= 0.27


class GlobalConfig(_Strict):
    resolve_timeout: str | None = None
    http_config: HTTPConfig | None = None
    smtp_from: str | None = None
    smtp_hello: str | None = None
    smtp_smarthost: str | None = None
    smtp_auth_username: str | None = None
    smtp_auth_password: str | None = None
    smtp_auth_password_file: str | None = None
    smtp_auth_secret: str | None = None
    smtp_auth_identity: str | None = None
    smtp_require_tls: bool | None = None
    slack_api_url: str | None = None
    slack_api_url_file: str | None = None
    pagerduty_url: str | None = None
    opsgenie_api_url: str | None = None
    opsgenie_api_key: str | None = None
    opsgenie_api_key_file: str | None = None
    wechat_api_url: str | None = None
    wechat_api_secret: str | None = None
    wechat_api_corp_id: str | None = None
    victorops_api_url: str | None = None
    victorops_api_key: str | None = None
    victorops_api_key_file: str | None = None
    telegram_api_url: str | None = None
    telegram_bot_token: str | None = None
    telegram_bot_token_file: str | None = None
    webex_api_url: str | None = None
    slack_app_token: str | None = None
    slack_app_token_file: str | None = None
    slack_app_url: str | None = None
    rocketchat_api_url: str | None = None
    rocketchat_token: str | None = None
    rocketchat_token_file: str | None = None
    rocketchat_token_id: str | None = None
    rocketchat_token_id_file: str | None = None
    mattermost_webhook_url: str | None = None
    mattermost_webhook_url_file: str | None = None
    jira_api_url: str | None = None


class EmailConfig(_Strict, rename={"from_": "from"}):
    send_resolved: bool | None = None
    to: str | list[str] | None = None  # a list: opsmesh's older receivers files
    from_: str | None = None
    hello: str | None = None
    smarthost: str | None = None
    auth_username: str | None = None
    auth_password: str | None = None
    auth_password_file: str | None = None
    auth_secret: str | None = None
    auth_identity: str | None = None
    headers: dict[str, str] | None = None
    html: str | None = None
    text: str | None = None
    require_tls: bool | None = None
    tls_config: TLSConfig | None = None
    # opsmesh extensions: implicit TLS, Cc, a Jinja2 subject.
    tls: bool | None = None
    cc: list[str] | str | None = None
    subject: str | None = None


class SlackConfirm(_Strict):
    title: str | None = None
    text: str | None = None
    ok_text: str | None = None
    dismiss_text: str | None = None


class SlackAction(_Strict):
    type: str | None = None
    text: str | None = None
    url: str | None = None
    style: str | None = None
    name: str | None = None
    value: str | None = None
    confirm: SlackConfirm | None = None


class SlackField(_Strict):
    title: str | None = None
    value: str | None = None
    short: bool | None = None


class SlackConfig(_Strict):
    send_resolved: bool | None = None
    http_config: HTTPConfig | None = None
    api_url: str | None = None
    api_url_file: str | None = None
    channel: str | None = None
    username: str | None = None
    color: str | None = None
    title: str | None = None
    title_link: str | None = None
    pretext: str | None = None
    text: str | None = None
    fields: list[SlackField] | None = None
    short_fields: bool | None = None
    footer: str | None = None
    fallback: str | None = None
    callback_id: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    image_url: str | None = None
    thumb_url: str | None = None
    link_names: bool | None = None
    mrkdwn_in: list[str] | None = None
    actions: list[SlackAction] | None = None
    # opsmesh extensions: a bot token (chat.postMessage) instead of an incoming webhook.
    token: str | None = None
    api_base_url: str | None = None
    message_text: str | None = None


class PagerDutyLink(_Strict):
    href: str | None = None
    text: str | None = None


class PagerDutyImage(_Strict):
    src: str | None = None
    alt: str | None = None
    href: str | None = None


class PagerDutyConfig(_Strict, rename={"class_": "class"}):
    send_resolved: bool | None = None
    http_config: HTTPConfig | None = None
    service_key: str | None = None
    service_key_file: str | None = None
    routing_key: str | None = None
    routing_key_file: str | None = None
    url: str | None = None
    client: str | None = None
    client_url: str | None = None
    description: str | None = None
    details: dict[str, Any] | None = None
    images: list[PagerDutyImage] | None = None
    links: list[PagerDutyLink] | None = None
    source: str | None = None
    severity: str | None = None
    class_: str | None = None
    component: str | None = None
    group: str | None = None
    # opsmesh extensions.
    summary: str | None = None
    rate_per_min: float | None = None


class WebhookConfig(_Strict):
    send_resolved: bool | None = None
    http_config: HTTPConfig | None = None
    url: str | None = None
    url_file: str | None = None
    max_alerts: int | None = None
    # opsmesh extension: Standard Webhooks signing secrets.
    secrets: list[str] | None = None


class OpsGenieResponder(_Strict):
    id: str | None = None
    name: str | None = None
    username: str | None = None
    type: str | None = None


class OpsGenieConfig(_Strict):
    send_resolved: bool | None = None
    http_config: HTTPConfig | None = None
    api_key: str | None = None
    api_key_file: str | None = None
    api_url: str | None = None
    message: str | None = None
    description: str | None = None
    source: str | None = None
    # Go's YAML reads a number into a string field as its text.
    details: dict[str, str | int | float] | None = None
    entity: str | None = None
    responders: list[OpsGenieResponder] | None = None
    actions: str | None = None
    tags: str | None = None
    note: str | None = None
    priority: str | None = None
    update_alerts: bool | None = None


class MSTeamsConfig(_Strict):
    send_resolved: bool | None = None
    http_config: HTTPConfig | None = None
    webhook_url: str | None = None
    webhook_url_file: str | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None


class Receiver(_Strict):
    name: str
    email_configs: list[EmailConfig] | None = None
    slack_configs: list[SlackConfig] | None = None
    pagerduty_configs: list[PagerDutyConfig] | None = None
    webhook_configs: list[WebhookConfig] | None = None
    opsgenie_configs: list[OpsGenieConfig] | None = None
    msteams_configs: list[MSTeamsConfig] | None = None
    # Integrations opsmesh does not implement: accepted here so the loader can name them.
    victorops_configs: list[Any] | None = None
    pushover_configs: list[Any] | None = None
    sns_configs: list[Any] | None = None
    telegram_configs: list[Any] | None = None
    webex_configs: list[Any] | None = None
    discord_configs: list[Any] | None = None
    msteamsv2_configs: list[Any] | None = None
    wechat_configs: list[Any] | None = None
    jira_configs: list[Any] | None = None
    rocketchat_configs: list[Any] | None = None
    mattermost_configs: list[Any] | None = None
    incidentio_configs: list[Any] | None = None
    # opsmesh extension: labels a receiver adds to its notifications.
    labels: dict[str, str] | None = None


class Route(_Strict):
    receiver: str | None = None
    group_by: list[str] | None = None
    match: dict[str, str] | None = None
    match_re: dict[str, str] | None = None
    matchers: list[str] | None = None
    # ``continue`` is a Python keyword.
    continue_: bool | None = msgspec.field(default=None, name="continue")
    routes: list[Route] | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    mute_time_intervals: list[str] | None = None
    active_time_intervals: list[str] | None = None
    labels: dict[str, str] | None = None  # opsmesh extension


class InhibitRule(_Strict):
    source_match: dict[str, str] | None = None
    source_match_re: dict[str, str] | None = None
    source_matchers: list[str] | None = None
    target_match: dict[str, str] | None = None
    target_match_re: dict[str, str] | None = None
    target_matchers: list[str] | None = None
    equal: list[str] | None = None
    name: str | None = None


class TimeRange(_Strict):
    start_time: str
    end_time: str


class TimeIntervalSpec(_Strict):
    times: list[TimeRange] | None = None
    weekdays: list[str] | None = None
    days_of_month: list[str] | None = None
    months: list[str] | None = None
    years: list[str] | None = None
    location: str | None = None


class TimeInterval(_Strict):
    name: str
    time_intervals: list[TimeIntervalSpec] | None = None


class Config(_Strict):
    global_: GlobalConfig | None = msgspec.field(default=None, name="global")
    route: Route | None = None
    inhibit_rules: list[InhibitRule] | None = None
    receivers: list[Receiver] | None = None
    templates: list[str] | None = None
    time_intervals: list[TimeInterval] | None = None
    mute_time_intervals: list[TimeInterval] | None = None
