"""Runbooks are linked from alerts (`runbook_url: runbooks/<name>.md`, made absolute under
OPSMESH_RUNBOOK_BASE_URL by the alert-engine; Prometheus's rules carry the absolute URL):
every shipped rule has a link, a link must never point at nothing, and the index must list
exactly the runbooks that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_engine.core.runbooks import DEFAULT_RUNBOOK_BASE_URL

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
INDEX = RUNBOOKS / "README.md"
# Rule files shipped with the project: the alert-engine's (runbook_url relative to the repo
# root) and Prometheus's in the compose stack (absolute, under the default base URL).
ENGINE_RULE_FILES = [
    ROOT / "dev/src/opsmesh_dev/tools/resources/demo-rules.yml",
    ROOT / "services/alert-engine/src/alert_engine/builtin_rules/default.yml",
]
PROMETHEUS_RULE_FILES = [ROOT / "compose/prometheus/rules/opsmesh.yml"]
RULE_FILES = ENGINE_RULE_FILES + PROMETHEUS_RULE_FILES
SECTIONS = ("What it means", "Impact", "Investigate", "Mitigate", "Escalate")
# The operational procedures (not one alert each) also say what is needed first, how to
# confirm the fix and what to do after the incident.
PROCEDURES = (
    "database-issues.md",
    "performance-degradation.md",
    "deployment-procedures.md",
    "disaster-recovery.md",
)
PROCEDURE_SECTIONS = (*SECTIONS, "Prerequisites", "Verification", "Post-incident")

_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def runbook_urls(rules_file: Path) -> list[tuple[str, str | None]]:
    """(alert name, runbook_url or None) for every rule in the file."""
    document: dict[str, Any] = yaml.safe_load(rules_file.read_text())
    return [
        (rule["alert"], rule.get("annotations", {}).get("runbook_url"))
        for group in document["groups"]
        for rule in group["rules"]
    ]


def runbook_files() -> set[str]:
    return {p.name for p in RUNBOOKS.glob("*.md") if p != INDEX}


def indexed() -> set[str]:
    """Runbooks the index links to (links to files in runbooks/ itself)."""
    return {target for target in _LINK.findall(INDEX.read_text()) if "/" not in target}


@pytest.mark.parametrize("rules_file", RULE_FILES, ids=lambda p: p.name)
def test_every_rule_links_a_runbook_that_exists(rules_file: Path) -> None:
    links = runbook_urls(rules_file)
    assert links, f"{rules_file.name} has no rule"
    absolute = rules_file in PROMETHEUS_RULE_FILES
    prefix = f"{DEFAULT_RUNBOOK_BASE_URL}/" if absolute else "runbooks/"
    for alert, url in links:
        assert url is not None, f"{alert} has no runbook_url"
        assert url.startswith(prefix), f"{alert}: runbook_url {url!r} is not under {prefix}"
        page = RUNBOOKS / url.removeprefix(prefix)
        assert page.is_file(), f"{alert}: runbook_url {url!r} names no page in runbooks/"


def test_index_lists_exactly_the_runbooks_that_exist() -> None:
    listed, present = indexed(), runbook_files()
    assert listed, "runbooks/README.md links to no runbook"
    assert not listed - present, f"the index links to missing runbooks: {sorted(listed - present)}"
    assert not present - listed, f"runbooks missing from the index: {sorted(present - listed)}"


def test_every_runbook_has_the_five_sections() -> None:
    names = sorted(runbook_files())
    assert names, "runbooks/ holds no runbook"
    for name in names:
        text = (RUNBOOKS / name).read_text()
        headings = re.findall(r"^## (.+?)\s*$", text, flags=re.MULTILINE)
        wanted = PROCEDURE_SECTIONS if name in PROCEDURES else SECTIONS
        missing = [s for s in wanted if s not in headings]
        assert not missing, f"{name} lacks sections {missing}"


def test_links_between_runbooks_resolve() -> None:
    for path in RUNBOOKS.glob("*.md"):
        for target in _LINK.findall(path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).is_file(), f"{path.name} links to missing {target}"


def test_the_operational_procedures_exist() -> None:
    assert set(PROCEDURES) <= runbook_files()
