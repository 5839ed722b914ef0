"""``/api/v2/status``: the shape of Alertmanager's specification, an Alertmanager release
the API is tested against as its version, and the start instant as its uptime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft4Validator
from pydantic import ValidationError

from alert_engine.api.status import (
    DEFAULT_COMPAT_VERSION,
    OPSMESH_VERSION,
    ServerStatus,
    UnsupportedCompatVersion,
    build_info,
    compat_version,
    status_json,
)
from alert_engine.api.v2 import AlertmanagerApi
from alert_engine.app import build
from alert_engine.settings import AlertEngineSettings
from opsmesh_dev.testing.clock import FakeClock

SPEC = Path(__file__).parents[4] / "tests" / "fixtures" / "openapi" / "alertmanager-v2.yaml"


def status_schema() -> dict[str, Any]:
    definitions = yaml.safe_load(SPEC.read_text())["definitions"]
    return {"$ref": "#/definitions/alertmanagerStatus", "definitions": definitions}


def test_the_status_has_the_specified_shape() -> None:
    shown = status_json(ServerStatus(build_info("0.25.0"), 1_790_000_000.5), "route: {}\n")
    Draft4Validator(status_schema()).validate(shown)
    assert shown["uptime"] == "2026-09-21T14:13:20.500Z"
    assert shown["config"] == {"original": "route: {}\n"}


def test_the_version_is_the_claimed_release_and_opsmesh_is_the_revision() -> None:
    info = build_info("0.34.2").as_json()
    assert info["version"] == "0.34.2"
    assert info["revision"] == f"opsmesh-alert-engine {OPSMESH_VERSION}"
    assert info["goVersion"].startswith("python3.")


@pytest.mark.parametrize("claimed", ["0.25.0", "0.25.1", "0.30.0", "0.34.9"])
def test_releases_the_api_is_tested_against_can_be_claimed(claimed: str) -> None:
    assert compat_version(claimed) == claimed


@pytest.mark.parametrize(
    "claimed", ["0.24.9", "0.35.0", "1.0.0", "v0.25.0", "0.25", "0.25.0-rc.1", "opsmesh", ""]
)
def test_other_versions_are_refused(claimed: str) -> None:
    with pytest.raises(UnsupportedCompatVersion):
        compat_version(claimed)


def test_the_setting_defaults_to_the_release_and_refuses_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert AlertEngineSettings().am_compat_version == DEFAULT_COMPAT_VERSION == "0.25.0"
    monkeypatch.setenv("ALERT_ENGINE_AM_COMPAT_VERSION", "0.34.0")
    assert AlertEngineSettings().am_compat_version == "0.34.0"
    monkeypatch.setenv("ALERT_ENGINE_AM_COMPAT_VERSION", "0.1.0")
    with pytest.raises(ValidationError, match=r"0\.25 to 0\.34"):
        AlertEngineSettings()


def test_the_uptime_is_read_once_from_the_clock_when_the_service_is_built() -> None:
    clock = FakeClock(1_790_000_000.0)
    app = build(AlertEngineSettings(), clock=clock)
    clock.advance(86_400)
    handlers = [
        route.handler
        for route in app.router.routes()
        if route.method == "GET" and route.resource and route.resource.canonical == "/api/v2/status"
    ]
    assert len(handlers) == 1
    api = getattr(handlers[0], "__self__", None)
    assert isinstance(api, AlertmanagerApi)
    assert api.server_status.started_at == 1_790_000_000.0
    assert api.server_status.build == build_info(DEFAULT_COMPAT_VERSION)
