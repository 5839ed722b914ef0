"""Runbook links made absolute: rules name their runbook by its path in the repository
(``runbooks/<name>.md``, which the contract tests check exists), and a notification must
carry a URL a person can click, so the engine joins the path to a base URL where the
runbooks are published (``OPSMESH_RUNBOOK_BASE_URL``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from alert_engine.core.rules import Rule

RUNBOOK_ANNOTATION = "runbook_url"
RUNBOOKS_DIR = "runbooks/"
# The console serves runbooks/ at /runbooks; this is its default address, as the engine's
# own external URL defaults to its local one. A deployment sets OPSMESH_RUNBOOK_BASE_URL to
# its console's public URL, or to wherever it keeps its own copy (a wiki, a fork).
DEFAULT_RUNBOOK_BASE_URL = "http://127.0.0.1:8086/runbooks"


def runbook_link(url: str, base: str) -> str:
    """``url`` under ``base`` when it is a repository path (``runbooks/x.md``); any other
    value (already absolute, or a rule's own wiki link) is the rule author's and stays."""
    if not url.startswith(RUNBOOKS_DIR):
        return url
    return f"{base.rstrip('/')}/{url.removeprefix(RUNBOOKS_DIR)}"


def link_runbooks(rules: Iterable[Rule], base: str) -> list[Rule]:
    linked: list[Rule] = []
    for rule in rules:
        url = rule.annotations.get(RUNBOOK_ANNOTATION)
        if url is None or not url.startswith(RUNBOOKS_DIR):
            linked.append(rule)
            continue
        annotations = {**rule.annotations, RUNBOOK_ANNOTATION: runbook_link(url, base)}
        linked.append(dataclasses.replace(rule, annotations=annotations))
    return linked
