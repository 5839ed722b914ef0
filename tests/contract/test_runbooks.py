"""Runbooks are linked from alerts (`runbook_url: runbooks/<name>.md`): a link must never
point at nothing, and the index must list exactly the runbooks that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
INDEX = RUNBOOKS / "README.md"
# Rule files shipped with the project; each rule's runbook_url is relative to the repo root.
RULE_FILES = [
    ROOT / "dev/src/opsmesh_dev/tools/resources/demo-rules.yml",
    ROOT / "services/alert-engine/src/alert_engine/builtin_rules/default.yml",
]
SECTIONS = ("What it means", "Impact", "Investigate", "Mitigate", "Escalate")

_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def runbook_urls(rules_file: Path) -> list[tuple[str, str]]:
    """(alert name, runbook_url) for every rule in the file."""
    document: dict[str, Any] = yaml.safe_load(rules_file.read_text())
    return [
        (rule["alert"], rule["annotations"]["runbook_url"])
        for group in document["groups"]
        for rule in group["rules"]
        if "runbook_url" in rule.get("annotations", {})
    ]


def runbook_files() -> set[str]:
    return {p.name for p in RUNBOOKS.glob("*.md") if p != INDEX}


def indexed() -> set[str]:
    """Runbooks the index links to (links to files in runbooks/ itself)."""
    return {target for target in _LINK.findall(INDEX.read_text()) if "/" not in target}


@pytest.mark.parametrize("rules_file", RULE_FILES, ids=lambda p: p.name)
def test_every_runbook_url_points_at_a_runbook(rules_file: Path) -> None:
    links = runbook_urls(rules_file)
    assert links, f"{rules_file.name} has no rule with a runbook_url"
    for alert, url in links:
        assert url.startswith("runbooks/"), f"{alert}: runbook_url {url!r} is not under runbooks/"
        assert (ROOT / url).is_file(), f"{alert}: runbook_url {url!r} does not exist"


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
        missing = [s for s in SECTIONS if s not in headings]
        assert not missing, f"{name} lacks sections {missing}"


def test_links_between_runbooks_resolve() -> None:
    for path in RUNBOOKS.glob("*.md"):
        for target in _LINK.findall(path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).is_file(), f"{path.name} links to missing {target}"
