"""Secrets in the configuration: masked wherever Alertmanager masks them, found by walking
the parsed document; YAML errors without the quoted line."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from alert_engine.core.amconfig import ConfigError, parse_config
from opsmesh.alertmanager import NOT_IMPLEMENTED
from opsmesh.alertmanager.redaction import MASK, SECRET_FIELDS, is_secret, redact
from opsmesh.yaml_errors import yaml_error_text

# Every value below that starts with "s3cr3t" is a secret; nothing else is.
CONFIG = textwrap.dedent(
    """\
    global:
      resolve_timeout: 5m
      smtp_smarthost: mail:25
      smtp_auth_username: alerts
      smtp_auth_password: s3cr3t-smtp
      smtp_auth_secret: s3cr3t-smtp-secret
      slack_api_url: https://hooks.slack.com/services/s3cr3t-global
      opsgenie_api_key: s3cr3t-opsgenie
      opsgenie_api_url: https://api.opsgenie.com/
      telegram_bot_token: s3cr3t-telegram
      http_config:
        basic_auth: {username: u, password: s3cr3t-basic}
        proxy_url: http://proxy:3128
        proxy_connect_header:
          Proxy-Authorization: [s3cr3t-proxy-header]
    route:
      receiver: pager
      routes:
        - matchers: ['team="db"']
          receiver: chat
    receivers:
      - name: pager
        pagerduty_configs:
          - routing_key: s3cr3t-routing
            url: https://events.pagerduty.com/v2/enqueue
          - service_key: s3cr3t-service
            http_config:
              authorization: {type: Bearer, credentials: s3cr3t-bearer}
              oauth2:
                client_id: id
                client_secret: s3cr3t-oauth
                token_url: https://auth/token
                tls_config: {key: s3cr3t-oauth-tls-key, cert_file: /c.pem}
        opsgenie_configs:
          - api_key: s3cr3t-og
            api_url: https://api.eu.opsgenie.com/
      - name: chat
        slack_configs:
          - api_url: https://hooks.slack.com/services/s3cr3t-slack
            channel: '#db'
          - token: s3cr3t-bot-token
            channel: '#ops'
        webhook_configs:
          - url: https://hooks.example/s3cr3t-webhook?token=x
            secrets: [s3cr3t-whsec-1, s3cr3t-whsec-2]
            http_config:
              bearer_token: s3cr3t-legacy-bearer
              tls_config: {key: s3cr3t-tls-key, ca_file: /ca.pem}
              http_headers:
                X-Api-Key: {secrets: [s3cr3t-header]}
                X-Plain: {values: [shown]}
        email_configs:
          - to: ops@example.org
            auth_password: s3cr3t-email
            auth_password_file: /run/secrets/email
        sns_configs:
          - sigv4: {access_key: AKIA, secret_key: s3cr3t-sigv4}
        pushover_configs:
          - {user_key: s3cr3t-pushover-user, token: s3cr3t-pushover-token}
        discord_configs: [{webhook_url: 'https://discord/s3cr3t-discord'}]
        msteams_configs: [{webhook_url: 'https://teams/s3cr3t-teams'}]
        rocketchat_configs: [{token: s3cr3t-rc, token_id: s3cr3t-rc-id}]
        incidentio_configs: [{alert_source_token: s3cr3t-incidentio, url: 'https://io/x'}]
        victorops_configs: [{api_key: s3cr3t-vo, routing_key: team}]
        wechat_configs: [{api_secret: s3cr3t-wechat}]
        telegram_configs: [{bot_token: s3cr3t-tg, chat_id: 1}]
    """
)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_every_secret_is_masked_and_nothing_else() -> None:
    original = yaml.safe_load(CONFIG)
    shown = redact(original)
    assert not [s for s in _strings(shown) if "s3cr3t" in s]
    # Every secret became the mask; every other value is unchanged.
    secrets = [s for s in _strings(original) if "s3cr3t" in s]
    assert len(secrets) == 33
    # A webhook url keeps its scheme and host (amtool 0.25 parses it back), nothing else.
    assert _strings(shown).count(MASK) == len(secrets) - 1
    assert shown["receivers"][1]["webhook_configs"][0]["url"] == f"https://hooks.example/{MASK}"
    assert shown["global"]["opsgenie_api_url"] == "https://api.opsgenie.com/"
    assert shown["global"]["http_config"]["proxy_url"] == "http://proxy:3128"
    assert shown["global"]["http_config"]["proxy_connect_header"] == {"Proxy-Authorization": [MASK]}
    pagerduty = shown["receivers"][0]["pagerduty_configs"]
    assert pagerduty[0] == {"routing_key": MASK, "url": "https://events.pagerduty.com/v2/enqueue"}
    assert pagerduty[1]["http_config"]["oauth2"]["client_id"] == "id"
    assert shown["receivers"][0]["opsgenie_configs"][0]["api_url"] == "https://api.eu.opsgenie.com/"
    chat = shown["receivers"][1]
    assert chat["webhook_configs"][0]["secrets"] == [MASK, MASK]
    assert chat["webhook_configs"][0]["http_config"]["http_headers"]["X-Plain"] == {
        "values": ["shown"]
    }
    assert chat["email_configs"][0]["auth_password_file"] == "/run/secrets/email"
    assert chat["victorops_configs"][0]["routing_key"] == "team"  # not a secret there
    assert original["receivers"][0]["pagerduty_configs"][0]["routing_key"] == "s3cr3t-routing"


def test_status_shows_the_masked_configuration() -> None:
    raw = yaml.safe_load(CONFIG)
    # An integration the notifier does not implement is a configuration error
    # (test_amconfig), so the loaded file holds the six that it does.
    for receiver in raw["receivers"]:
        for key in [k for k in receiver if k.removesuffix("_configs") in NOT_IMPLEMENTED]:
            del receiver[key]
    # and Alertmanager refuses authorization beside oauth2, a password beside its file.
    del raw["receivers"][0]["pagerduty_configs"][1]["http_config"]["authorization"]
    # ... and the notifier speaks PagerDuty's Events API v2 only (routing_key).
    second = raw["receivers"][0]["pagerduty_configs"][1]
    second["routing_key"] = second.pop("service_key")
    del raw["receivers"][1]["email_configs"][0]["auth_password_file"]
    raw["global"]["smtp_from"] = "am@example.org"
    config = parse_config(yaml.safe_dump(raw))
    assert "s3cr3t" not in config.original
    shown = yaml.safe_load(config.original)
    assert shown["receivers"][0]["pagerduty_configs"][0]["routing_key"] == MASK
    # Global defaults are applied and shown, as Alertmanager shows them.
    assert shown["receivers"][1]["email_configs"][0]["smarthost"] == "mail:25"
    assert shown["receivers"][1]["email_configs"][0]["auth_secret"] == MASK


def test_empty_secrets_stay_empty_as_alertmanager_prints_them() -> None:
    shown = redact({"global": {"smtp_auth_password": "", "slack_api_url": None}})
    assert shown == {"global": {"smtp_auth_password": "", "slack_api_url": None}}


def test_anchored_secrets_are_masked_at_every_use() -> None:
    text = textwrap.dedent(
        """\
        receivers:
          - name: a
            pagerduty_configs: [{routing_key: &key s3cr3t-anchored}]
          - name: b
            pagerduty_configs: [{routing_key: *key}]
            webhook_configs: [{url: *key}]
        """
    )
    assert "s3cr3t" not in yaml.safe_dump(redact(yaml.safe_load(text)))


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        ("global.slack_api_url", True),
        ("receivers.3.webhook_configs.0.url", True),
        ("receivers.3.pagerduty_configs.0.url", False),
        ("receivers.0.email_configs.1.http_config.tls_config.key", True),
        ("global.http_config.oauth2.tls_config.key", True),
        ("route.receiver", False),
        ("receivers.0.name", False),
    ],
)
def test_is_secret(path: str, secret: bool) -> None:
    assert is_secret(path.split(".")) is secret


def test_the_list_covers_alertmanagers_secret_types() -> None:
    names = {field.rsplit(".", 1)[-1] for field in SECRET_FIELDS}
    assert {"routing_key", "service_key", "api_url", "auth_password", "password"} <= names
    assert {"credentials", "bearer_token", "client_secret", "api_key", "webhook_url"} <= names


def test_yaml_errors_do_not_quote_the_line() -> None:
    broken = "global:\n  slack_api_url: [https://hooks/s3cr3t\nroute: {receiver: x}\n"
    with pytest.raises(ConfigError) as refused:
        parse_config(broken)
    assert "s3cr3t" not in str(refused.value)
    assert "line " in str(refused.value)
    with pytest.raises(yaml.YAMLError) as raw:
        yaml.safe_load(broken)
    assert "s3cr3t" in str(raw.value), "PyYAML's own message would have shown it"
    assert "s3cr3t" not in yaml_error_text(raw.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:s3cr3t@hooks.example:8443/p/s3cr3t?t=s3cr3t#f",
            "https://hooks.example:8443/",
        ),
        ("http://[::1]:9000/s3cr3t", "http://[::1]:9000/"),
        ("ftp://hooks.example/s3cr3t", ""),
        ("hooks.example/s3cr3t", ""),
        ("http://hooks.example:99999999/s3cr3t", ""),
    ],
)
def test_a_webhook_url_keeps_only_scheme_and_host(url: str, shown: str) -> None:
    document = {"receivers": [{"name": "r", "webhook_configs": [{"url": url}]}]}
    masked = redact(document)["receivers"][0]["webhook_configs"][0]["url"]
    assert masked == f"{shown}{MASK}"
