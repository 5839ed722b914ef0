"""``opsgenie_configs`` and ``msteams_configs`` read as Alertmanager reads them: global
defaults, secret files, the checks its ``UnmarshalYAML`` makes; Go templates only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from notifier.amtemplate.messages import (
    msteams_card,
    opsgenie_create,
    opsgenie_fields,
    opsgenie_responders,
)
from notifier.channels.opsgenie import alert_alias, api_calls
from notifier.receivers.config import (
    IntegrationKind,
    MSTeamsConfig,
    OpsGenieConfig,
    ReceiversError,
    TemplateLanguage,
)
from notifier.receivers.loading import load_receivers, parse_receivers
from notifier.samples import sample_request
from opsmesh.alertmanager import load_document
from opsmesh.events.alerts import AlertStatus
from opsmesh.send_resolved import integration_sends_resolved, receiver_sends_resolved

KEY = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TEAMS_URL = "https://example.webhook.office.com/webhookb2/s3cr3t/IncomingWebhook/1/2"


def _opsgenie(config: dict[str, Any], glob: dict[str, Any] | None = None) -> OpsGenieConfig:
    raw = {"global": glob or {}, "receivers": [{"name": "r", "opsgenie_configs": [config]}]}
    return parse_receivers(raw)["r"].opsgenie_configs[0]


def _msteams(config: dict[str, Any], base_dir: Path | None = None) -> MSTeamsConfig:
    raw = {"receivers": [{"name": "r", "msteams_configs": [config]}]}
    return parse_receivers(raw, base_dir=base_dir)["r"].msteams_configs[0]


def test_opsgenie_defaults_are_alertmanagers() -> None:
    config = _opsgenie({"api_key": KEY})
    assert config.api_url == "https://api.opsgenie.com/"
    assert config.send_resolved is True
    assert config.update_alerts is False
    assert (config.message, config.description, config.source) == (None, None, None)
    assert KEY not in repr(config)


def test_opsgenie_takes_the_global_key_and_url_and_the_url_gets_its_slash() -> None:
    config = _opsgenie({}, {"opsgenie_api_key": KEY, "opsgenie_api_url": "https://og.example/x"})
    assert config.api_key.get_secret_value() == KEY
    assert config.api_url == "https://og.example/x/"
    own = _opsgenie({"api_key": "own-key"}, {"opsgenie_api_key": KEY})
    assert own.api_key.get_secret_value() == "own-key"


def test_opsgenie_key_files_are_read_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")
    raw = {
        "global": {"opsgenie_api_key_file": "key"},
        "receivers": [
            {"name": "r", "opsgenie_configs": [{}, {"api_key_file": str(tmp_path / "key")}]}
        ],
    }
    first, second = parse_receivers(raw, base_dir=tmp_path)["r"].opsgenie_configs
    assert first.api_key.get_secret_value() == second.api_key.get_secret_value() == KEY


@pytest.mark.parametrize(
    ("config", "glob", "message"),
    [
        ({}, {}, "no global OpsGenie API Key set"),
        ({"api_key": "a", "api_key_file": "f"}, {}, "at most one of api_key & api_key_file"),
        ({}, {"opsgenie_api_key": "a", "opsgenie_api_key_file": "f"}, "opsgenie_api_key &"),
        ({"api_key": "a", "responders": [{"type": "team"}]}, {}, "at least one of id"),
        ({"api_key": "a", "responders": [{"name": "x", "type": "squad"}]}, {}, "'squad'"),
        ({"api_key": "a", "api_url": "ftp://og.example/"}, {}, "http:// or https://"),
        ({"api_key": "a", "teams": "x"}, {}, "unknown field `teams`"),
    ],
)
def test_opsgenie_configuration_errors_are_alertmanagers(
    config: dict[str, Any], glob: dict[str, Any], message: str
) -> None:
    with pytest.raises(ReceiversError, match=message.replace("(", r"\(")) as refused:
        _opsgenie(config, glob)
    assert "opsgenie" in str(refused.value).lower()


def test_opsgenie_responder_types_are_checked_in_lower_case_and_kept_as_written() -> None:
    config = _opsgenie(
        {
            "api_key": KEY,
            "responders": [
                {"username": "a@example.com", "type": "User"},
                {"name": "{{ .CommonLabels.team }}", "type": "{{ .CommonLabels.kind }}"},
            ],
            "details": {"count": 2, "ratio": 0.5},
        }
    )
    # Alertmanager 0.25 sends "User" as written (test_corpus_vs_alertmanager).
    assert [r.type for r in config.responders] == ["User", "{{ .CommonLabels.kind }}"]
    assert config.details == {"count": "2", "ratio": "0.5"}  # YAML numbers read as text


def test_msteams_needs_exactly_one_url_and_hides_it() -> None:
    config = _msteams({"webhook_url": TEAMS_URL})
    assert config.send_resolved is True
    assert "s3cr3t" not in repr(config)
    with pytest.raises(ReceiversError, match="one of webhook_url or webhook_url_file"):
        _msteams({})
    with pytest.raises(ReceiversError, match="at most one of webhook_url & webhook_url_file"):
        _msteams({"webhook_url": TEAMS_URL, "webhook_url_file": "f"})
    with pytest.raises(ReceiversError) as refused:
        _msteams({"webhook_url": "ftp://s3cr3t.example/"})
    assert "s3cr3t" not in str(refused.value)


def test_msteams_url_file_is_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "url").write_text(TEAMS_URL + "\n")
    assert _msteams({"webhook_url_file": "url"}, tmp_path).webhook_url.get_secret_value() == (
        TEAMS_URL
    )
    (tmp_path / "bad").write_text("not a url s3cr3t")
    with pytest.raises(ReceiversError) as refused:
        _msteams({"webhook_url_file": "bad"}, tmp_path)
    assert "s3cr3t" not in str(refused.value)


def test_integration_ids_follow_the_earlier_kinds() -> None:
    raw = {
        "receivers": [
            {
                "name": "r",
                "webhook_configs": [{"url": "https://hooks.example/"}],
                "opsgenie_configs": [{"api_key": KEY}],
                "msteams_configs": [{"webhook_url": TEAMS_URL}, {"webhook_url": TEAMS_URL}],
            }
        ]
    }
    ids = [(i, k) for i, k, _ in parse_receivers(raw)["r"].integrations()]
    assert ids == [
        ("webhook-0", IntegrationKind.WEBHOOK),
        ("opsgenie-0", IntegrationKind.OPSGENIE),
        ("msteams-0", IntegrationKind.MSTEAMS),
        ("msteams-1", IntegrationKind.MSTEAMS),
    ]


def test_jinja2_receivers_files_refuse_go_only_integrations(tmp_path: Path) -> None:
    receivers = {"receivers": [{"name": "r", "msteams_configs": [{"webhook_url": TEAMS_URL}]}]}
    path = tmp_path / "receivers.yml"
    path.write_text(yaml.safe_dump(receivers))
    with pytest.raises(ReceiversError, match="Alertmanager \\(Go\\) templates only"):
        load_receivers(str(path), None)
    assert load_receivers(str(path), None, TemplateLanguage.GO).get("r") is not None
    path.write_text(yaml.safe_dump({**receivers, "route": {"receiver": "r"}}))
    assert load_receivers(str(path), None).language is TemplateLanguage.GO


def test_send_resolved_defaults_are_shared_with_the_alert_engine() -> None:
    assert integration_sends_resolved("opsgenie", {}) is True
    assert integration_sends_resolved("msteams", {}) is True
    assert integration_sends_resolved("msteams", {"send_resolved": False}) is False
    assert receiver_sends_resolved({"msteams_configs": [{}], "slack_configs": [{}]}) is True


def test_status_masks_the_key_and_the_url() -> None:
    loaded = load_document(
        {
            "route": {"receiver": "r"},
            "receivers": [
                {
                    "name": "r",
                    "opsgenie_configs": [{"api_key": KEY}],
                    "msteams_configs": [{"webhook_url": TEAMS_URL}],
                }
            ],
        }
    )
    assert KEY not in loaded.original
    assert "s3cr3t" not in loaded.original
    shown = yaml.safe_load(loaded.original)["receivers"][0]
    assert shown["opsgenie_configs"][0]["api_key"] == "<secret>"
    assert shown["msteams_configs"][0]["webhook_url"] == "<secret>"


def _rendered(config: OpsGenieConfig, **values: str) -> dict[str, Any]:
    """Each field as if its template rendered to itself, with overrides."""
    out: dict[str, Any] = {f.name: f.template for f in opsgenie_fields(config)}
    out.update({k.replace("__", "."): v for k, v in values.items()})
    return out


def test_opsgenie_requests_without_a_renderer() -> None:
    config = _opsgenie({"api_key": KEY, "update_alerts": True})
    firing = sample_request("r")
    rendered = _rendered(config, message="m", description="", source="s")
    calls = api_calls(config, firing, rendered)
    alias = alert_alias(firing.group_key)
    assert [(c.method, c.path) for c in calls] == [
        ("POST", "v2/alerts"),
        ("PUT", f"v2/alerts/{alias}/message?identifierType=alias"),
        ("PUT", f"v2/alerts/{alias}/description?identifierType=alias"),
    ]
    assert "description" not in calls[0].body  # omitted when empty, as Alertmanager's JSON
    assert calls[2].body == {}
    resolved = sample_request("r", status=AlertStatus.RESOLVED)
    (close,) = api_calls(config, resolved, rendered)
    assert (close.method, close.body) == ("POST", {"source": "s"})


def test_opsgenie_responders_split_teams_and_drop_empty_ones() -> None:
    config = _opsgenie(
        {
            "api_key": KEY,
            "responders": [
                {"name": "a,,b", "type": "teams"},
                {"id": "{{ .X }}", "type": "team"},
            ],
        }
    )
    rendered = _rendered(config, responders__1__id="", responders__1__type="")
    assert opsgenie_responders(config, rendered) == [
        {"name": "a", "type": "team"},
        {"name": "b", "type": "team"},
    ]
    body = opsgenie_create(config, sample_request("r"), rendered, "alias")
    assert body["responders"] == opsgenie_responders(config, rendered)


def test_teams_card_colour_follows_the_groups_status() -> None:
    rendered = {"title": "t", "summary": "s", "text": "x"}
    assert msteams_card(sample_request("r"), rendered)["themeColor"] == "8C1A1A"
    resolved = sample_request("r", status=AlertStatus.RESOLVED)
    assert msteams_card(resolved, rendered)["themeColor"] == "2DC72D"
