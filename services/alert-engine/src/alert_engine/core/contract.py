"""Rules and rule tests checked against the signal catalogue (``opsmesh.catalogue``).

A rule that names a signal no service emits, a stat the signal does not carry or a label
it does not have never fires, and nothing else says so. The shipped rule files are held
to the catalogue by the contract tests; ``opsmesh rules check --catalogue`` does the same
for an operator's file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from alert_engine.core.rules import Rule
from opsmesh import catalogue
from opsmesh.catalogue import SignalSpec
from opsmesh.events.signals import SignalSource

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


def input_problems(
    name: str,
    *,
    source: SignalSource | None,
    labels: Mapping[str, str],
    stats: Iterable[str],
) -> list[str]:
    """What in a rule test's input signal differs from what the services emit: its name,
    source, labels (exactly the declared ones; at least them for an application metric)
    and stats (declared ones; a test may leave any out)."""
    spec = _spec(name)
    if spec is None:
        return [f"signal `{name}`: no service emits it (see `opsmesh signals`)"]
    problems = []
    if source is not None and source is not spec.source:
        problems.append(f"source {source}: {name} comes from {spec.source}")
    application = name in {m.name for m in catalogue.APPLICATION_METRICS}
    given, declared = set(labels), set(spec.labels)
    problems.extend(
        f"label `{label}`: {name} has none" for label in sorted(given - declared) if not application
    )
    problems.extend(f"label `{label}`: missing" for label in sorted(declared - given))
    problems.extend(
        f"stat `{stat}`: {name} carries no such stat"
        for stat in sorted(set(stats) - set(spec.stats))
    )
    return problems
