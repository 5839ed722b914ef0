"""Rules name runbooks by repository path; what leaves the engine is a URL a person can
click, under OPSMESH_RUNBOOK_BASE_URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from alert_engine.app import load_rules
from alert_engine.cli import BUILTIN_RULES, builtin_text
from alert_engine.core.runbooks import DEFAULT_RUNBOOK_BASE_URL, runbook_link
from alert_engine.settings import AlertEngineSettings

BASE = "https://wiki.example.com/ops/runbooks/"


def test_the_builtin_rules_load_with_absolute_runbook_urls(tmp_path: Path) -> None:
    rules_file = tmp_path / "alerts.yml"
    rules_file.write_text(builtin_text(BUILTIN_RULES))
    rules = load_rules((str(rules_file),), BASE)
    assert rules
    for rule in rules:
        url = rule.annotations["runbook_url"]
        assert url.startswith("https://wiki.example.com/ops/runbooks/"), (rule.name, url)
        assert url.endswith(".md"), url
        assert "//" not in url.removeprefix("https://"), url


def test_a_link_that_is_not_a_repository_path_is_the_authors_and_stays() -> None:
    assert runbook_link("https://elsewhere.example/x", BASE) == "https://elsewhere.example/x"
    assert runbook_link("see the wiki", BASE) == "see the wiki"
    assert runbook_link("runbooks/a.md", BASE) == "https://wiki.example.com/ops/runbooks/a.md"


def test_the_base_url_defaults_to_the_published_runbooks_and_must_be_http() -> None:
    assert AlertEngineSettings().runbook_base_url == DEFAULT_RUNBOOK_BASE_URL
    configured = AlertEngineSettings(OPSMESH_RUNBOOK_BASE_URL=BASE)
    assert configured.runbook_base_url == BASE
    with pytest.raises(ValidationError, match="OPSMESH_RUNBOOK_BASE_URL"):
        AlertEngineSettings(OPSMESH_RUNBOOK_BASE_URL="runbooks/")
