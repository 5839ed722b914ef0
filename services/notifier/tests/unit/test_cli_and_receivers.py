"""The receivers file (Alertmanager's format) and ``opsmesh notify preview/test``."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from notifier.cli import notify
from notifier.receivers.config import ReceiversError
from notifier.receivers.loading import load_receivers, parse_receivers

FILE = """
receivers:
  - name: ops
    email_configs:
      - to: [oncall@example.com]
        from: opsmesh@example.com
        smarthost: "127.0.0.1:25"
        auth_password: hunter2
        subject: "{{ status }}: {{ groupLabels.alertname }}"
    slack_configs:
      - token: xoxb-secret-token
        channel: C123
    pagerduty_configs:
      - routing_key: R0UTINGKEY0123456789abcdef012345
    webhook_configs:
      - url: "{hook}"
        secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]
"""


def test_integrations_have_stable_ids_and_secrets_do_not_print(tmp_path: Path) -> None:
    path = tmp_path / "receivers.yml"
    path.write_text(FILE.replace("{hook}", "https://hooks.example.com/x"))
    receivers = load_receivers(str(path), default_webhook_url="https://default.example.com")
    ops = receivers.by_name["ops"]
    assert [i for i, _, _ in ops.integrations()] == [
        "email-0",
        "slack-0",
        "pagerduty-0",
        "webhook-0",
    ]
    text = repr(ops)
    for secret in ("hunter2", "xoxb-secret-token", "R0UTINGKEY", "whsec_MfKQ"):
        assert secret not in text
    assert receivers.by_name["default"].webhook_configs[0].url == "https://default.example.com"


@pytest.mark.parametrize(
    "raw",
    [
        {"receivers": [{"name": "a"}, {"name": "a"}]},
        {"receivers": [{"name": "a", "slack_configs": [{"channel": "C1"}]}]},
        {"receivers": [{"name": "a", "slack_configs": [{"token": "t"}]}]},
        {"receivers": [{"name": "a", "email_configs": [{"to": ["x@y"]}]}]},
    ],
)
def test_bad_files_are_refused_with_a_reason(raw: object) -> None:
    with pytest.raises(ReceiversError):
        parse_receivers(raw)


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[dict]]]:
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            seen.append(
                {"headers": dict(self.headers), "body": json.loads(self.rfile.read(length))}
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


def test_preview_renders_every_integration(tmp_path: Path) -> None:
    path = tmp_path / "receivers.yml"
    path.write_text(FILE.replace("{hook}", "https://hooks.example.com/x"))
    result = CliRunner().invoke(notify, ["preview", "ops", "--receivers-file", str(path)])
    assert result.exit_code == 0, result.output
    for header in ("== email-0", "== slack-0", "== pagerduty-0", "== webhook-0"):
        assert header in result.output
    assert "Subject: firing: DiskAlmostFull" in result.output
    assert "Disk &lt;sda1&gt;" in result.output  # the HTML part, escaped
    assert '"event_action": "trigger"' in result.output
    assert "R0UTINGKEY" not in result.output


def test_test_sends_one_sample_and_reports_each_integration(
    tmp_path: Path, hook_server: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = hook_server
    path = tmp_path / "receivers.yml"
    path.write_text(
        "receivers:\n  - name: hooks\n    webhook_configs:\n"
        f"      - url: {url}\n        secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]\n"
    )
    monkeypatch.setenv("NOTIFIER_ALLOWED_NETWORKS", "127.0.0.0/8")
    result = CliRunner().invoke(notify, ["test", "hooks", "--receivers-file", str(path)])
    assert result.exit_code == 0, result.output
    assert "webhook-0: sent (status 200)" in result.output
    [request] = seen
    assert request["body"]["version"] == "4"
    assert request["headers"]["webhook-signature"].startswith("v1,")

    missing = CliRunner().invoke(notify, ["test", "nobody", "--receivers-file", str(path)])
    assert missing.exit_code != 0
    assert "no receiver 'nobody'" in missing.output


def test_test_refuses_private_targets_without_the_allow_list(
    tmp_path: Path, hook_server: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = hook_server
    path = tmp_path / "receivers.yml"
    path.write_text(f"receivers:\n  - name: hooks\n    webhook_configs:\n      - url: {url}\n")
    monkeypatch.delenv("NOTIFIER_ALLOWED_NETWORKS", raising=False)
    result = CliRunner().invoke(notify, ["test", "hooks", "--receivers-file", str(path)])
    assert result.exit_code != 0
    assert "refused_target" in result.output
    assert seen == []


@pytest.mark.parametrize(
    ("integration", "message"),
    [
        (
            {"webhook_configs": [{"url": "file:///etc/passwd?token=SECRET-T"}]},
            "webhook_configs[0].url",
        ),
        ({"webhook_configs": [{"url": "gopher://h:70/SECRET-T"}]}, "http:// or https://"),
        ({"slack_configs": [{"api_url": "ftp://hooks/SECRET-T"}]}, "slack_configs[0].api_url"),
        (
            {"pagerduty_configs": [{"routing_key": "SECRET-T", "url": "//no-scheme"}]},
            "pagerduty_configs[0].url",
        ),
        (
            {"email_configs": [{"to": ["a@x"], "from": "b@x", "smarthost": "mail.example"}]},
            "is not host:port",
        ),
        (
            {"pagerduty_configs": [{"routing_key": "SECRET-T", "rate_per_min": 0}]},
            "rate_per_min: 0",
        ),
        (
            {"pagerduty_configs": [{"routing_key": "SECRET-T", "rate_per_min": -5.0}]},
            "must be a positive number",
        ),
    ],
)
def test_unusable_targets_are_refused_when_the_file_loads(
    integration: dict[str, Any], message: str
) -> None:
    with pytest.raises(ReceiversError, match=re.escape(message)) as info:
        parse_receivers({"receivers": [{"name": "r", **integration}]})
    assert "SECRET-T" not in str(info.value)


@pytest.mark.parametrize(
    "broken",
    [
        # An unclosed flow sequence, a stray mapping value, an unclosed quote, a bad
        # indent: PyYAML quotes the line of each, secret and all.
        "receivers:\n  - name: r\n    slack_configs:\n"
        "      - api_url: [https://hooks.slack.com/services/T0/B0/s3cr3tHOOK\n",
        "receivers:\n  - name: r\n    pagerduty_configs:\n"
        "      - routing_key: R0UTING: s3cr3tKEY0123456789\n",
        'receivers:\n  - name: r\n    webhook_configs:\n      - url: "https://h/x?token=s3cr3tTOK\n',
        "receivers:\n  - name: r\n    email_configs:\n      - auth_password: s3cr3tPW\n"
        "     to: [a@b]\n",
    ],
)
def test_a_yaml_error_names_the_place_not_the_secret(tmp_path: Path, broken: str) -> None:
    path = tmp_path / "receivers.yml"
    path.write_text(broken)
    with pytest.raises(ReceiversError) as refused:
        load_receivers(str(path), None)
    message = str(refused.value)
    assert "s3cr3t" not in message
    assert re.search(r"not valid YAML: line \d+, column \d+: \w", message), message


AM_FILE = """
global:
  smtp_smarthost: mail.example.com:587
  smtp_from: am@example.com
  smtp_auth_username: am
  smtp_auth_password_file: smtp-password
  slack_api_url_file: slack-url
route: {receiver: ops}
receivers:
  - name: ops
    email_configs:
      - to: 'oncall@example.com, boss@example.com'
    slack_configs:
      - channel: '#ops'
    pagerduty_configs:
      - routing_key_file: /dev/null/unused
    webhook_configs:
      - url_file: hook-url
        max_alerts: 5
"""


def test_an_alertmanager_file_gets_global_defaults_and_file_secrets(tmp_path: Path) -> None:
    (tmp_path / "smtp-password").write_text("s3cr3t-smtp\n")
    (tmp_path / "slack-url").write_text("https://hooks.slack.com/services/T/B/s3cr3t\n")
    (tmp_path / "hook-url").write_text("https://hooks.example.com/s3cr3t\n")
    (tmp_path / "pd-key").write_text("R0UTING-FROM-FILE\n")
    path = tmp_path / "alertmanager.yml"
    path.write_text(AM_FILE.replace("/dev/null/unused", "pd-key"))
    ops = load_receivers(str(path), None).by_name["ops"]
    email = ops.email_configs[0]
    # ``to`` as Alertmanager writes it: one comma-separated string.
    assert email.to == ["oncall@example.com", "boss@example.com"]
    assert (email.smarthost, email.from_, email.auth_username) == (
        "mail.example.com:587",
        "am@example.com",
        "am",
    )
    assert email.auth_password is not None
    assert email.auth_password.get_secret_value() == "s3cr3t-smtp"
    assert ops.slack_configs[0].api_url is not None
    assert ops.slack_configs[0].api_url.get_secret_value().endswith("/T/B/s3cr3t")
    assert ops.pagerduty_configs[0].routing_key.get_secret_value() == "R0UTING-FROM-FILE"
    assert ops.webhook_configs[0].url == "https://hooks.example.com/s3cr3t"
    assert "s3cr3t" not in repr(ops.email_configs) + repr(ops.slack_configs)


@pytest.mark.parametrize(
    "integration",
    [
        "victorops",
        "pushover",
        "sns",
        "telegram",
        "webex",
        "discord",
        "msteamsv2",
        "wechat",
        "jira",
        "rocketchat",
    ],
)
def test_an_unimplemented_integration_is_refused_naming_receiver_and_integration(
    integration: str,
) -> None:
    raw = {"receivers": [{"name": "team-x", f"{integration}_configs": [{}]}]}
    with pytest.raises(ReceiversError) as refused:
        parse_receivers(raw)
    message = str(refused.value)
    assert "'team-x'" in message
    assert f"{integration}_configs" in message
    assert "does not implement" in message


def test_a_misspelt_field_is_refused_as_alertmanager_refuses_it() -> None:
    raw = {
        "receivers": [
            {"name": "a", "webhook_configs": [{"url": "https://h.example/", "sendresolved": True}]}
        ]
    }
    with pytest.raises(ReceiversError, match=r"webhook_configs\[0\]: unknown field `sendresolved`"):
        parse_receivers(raw)


def test_an_unreadable_secret_file_names_the_path_not_a_secret(tmp_path: Path) -> None:
    raw = {"receivers": [{"name": "a", "webhook_configs": [{"url_file": "missing"}]}]}
    with pytest.raises(ReceiversError, match=r"url_file: cannot read .*missing"):
        parse_receivers(raw, base_dir=tmp_path)
