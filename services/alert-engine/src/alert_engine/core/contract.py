"""Rules checked against the signal catalogue (``opsmesh.catalogue``).

A rule that names a signal no service emits, a stat the signal does not carry or a label
it does not have never fires, and nothing else says so. The shipped rule files are held
to the catalogue by the contract tests; ``opsmesh rules check --catalogue`` does the same
for an operator's file.
"""

from __future__ import annotations

import re

from alert_engine.core.rules import Rule
from opsmesh import catalogue
from opsmesh.catalogue import SignalSpec

# `labels.name` and `labels['name']` / `labels["name"]` in a label or annotation template.
_LABEL_REFERENCE = re.compile(r"""\blabels(?:\.([A-Za-z_]\w*)|\[\s*['"]([^'"]+)['"]\s*\])""")


def template_labels(text: str) -> set[str]:
    """The signal labels a template reads."""
    return {a or b for a, b in _LABEL_REFERENCE.findall(text)}


def _spec(name: str) -> SignalSpec | None:
    return catalogue.declared().get(name)


def rule_problems(rule: Rule) -> list[str]:
    """What in ``rule`` the catalogue does not declare (empty: it can fire)."""
    spec = _spec(rule.signal)
    if spec is None:
        return [f"signal `{rule.signal}`: no service emits it (see `opsmesh signals`)"]
    problems = []
    if rule.stat is not None and rule.stat not in spec.stats:
        problems.append(
            f"stat `{rule.stat}`: {spec.name} carries "
            + (", ".join(sorted(spec.stats)) if spec.stats else "no stats")
        )
    # Labels the rule sets itself (severity ...) may be read by its templates.
    own = set(rule.labels)
    used: dict[str, set[str]] = {}
    for label in rule.matchers:
        used.setdefault(label, set()).add("matchers")
    for label in rule.by or ():
        used.setdefault(label, set()).add("by")
    for section, templates in (("labels", rule.labels), ("annotations", rule.annotations)):
        for key, text in templates.items():
            for label in template_labels(text) - own:
                used.setdefault(label, set()).add(f"{section}.{key}")
    problems.extend(
        f"label `{label}` (in {', '.join(sorted(where))}): {spec.name} has "
        + ", ".join(sorted(spec.labels))
        for label, where in sorted(used.items())
        if label not in spec.labels
    )
    return problems
