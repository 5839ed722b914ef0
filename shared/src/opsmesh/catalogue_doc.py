"""The signal catalogue as text: ``opsmesh signals`` and ``docs/signals.md``."""

from __future__ import annotations

from collections.abc import Mapping

from opsmesh import catalogue
from opsmesh.catalogue import SignalSpec, StatSpec

DOC_PATH = "docs/signals.md"


def listing() -> str:
    """One block per signal, for the terminal."""
    lines = []
    for spec in catalogue.SERVICE_SIGNALS:
        lines += _block(spec)
    for metric in catalogue.APPLICATION_METRICS:
        lines += _block(metric.signal, f"application {metric.metric_kind}, rolled up")
    lines.append("rollups of any other metric (named after it, labels as published):")
    for kind, rollup in catalogue.ROLLUPS.items():
        lines.append(f"  {kind:<10} value: {rollup.value}")
        lines.append(f"  {'':<10} stats: {_names(rollup.stats)}")
    return "\n".join(lines)


def _block(spec: SignalSpec, origin: str | None = None) -> list[str]:
    return [
        f"{spec.name}  ({origin or spec.emitted_by}; {spec.source}/{spec.kind})",
        f"    {spec.summary}",
        f"    value:  {spec.value}",
        f"    labels: {', '.join(spec.labels) or '-'}",
        f"    stats:  {_names(spec.stats)}",
        "",
    ]


def _names(stats: Mapping[str, StatSpec]) -> str:
    return ", ".join(name if s.always else f"{name}?" for name, s in stats.items()) or "-"


def markdown() -> str:
    """``docs/signals.md``: generated, checked for staleness by a test."""
    out = [
        "# Signals",
        "",
        "<!-- Generated from shared/src/opsmesh/catalogue.py by `make schemas`"
        " (`opsmesh signals --markdown`); do not edit. -->",
        "",
        "Every signal the mesh puts on `opsmesh.signals`, as declared in the signal",
        "catalogue (`opsmesh.catalogue`). A rule (`docs/rules.md`) names a signal, compares",
        "its `value` or one of its `stats`, and matches, groups and templates on its labels.",
        "The built-in rules and their tests are checked against this catalogue",
        "(`tests/contract/test_signal_catalogue.py`), and so is everything the services emit.",
        "`opsmesh signals` prints the same list; `opsmesh rules check --catalogue FILE`",
        "checks a rule file against it.",
        "",
        "Every signal carries `source`, `kind`, `name`, `subject` (what it is about),",
        "`labels`, `value`, `stats`, `observed_at` and, for rollups, `window_start` and",
        "`window_end` (the event's schema: `docs/schemas/dev.opsmesh.signal.observed.v1.json`).",
        "",
        "## Service signals",
        "",
        "| signal | emitted by | source/kind | value |",
        "|---|---|---|---|",
    ]
    out += [
        f"| [`{s.name}`](#{s.name}) | {s.emitted_by} | {s.source}/{s.kind} | {_cell(s.value)} |"
        for s in catalogue.SERVICE_SIGNALS
    ]
    out.append("")
    for spec in catalogue.SERVICE_SIGNALS:
        out += _section(spec)
    out += [
        "## Rollups of application metrics",
        "",
        "metrics-ingest closes a tumbling window of every series (`METRICS_INGEST_WINDOWS_S`)",
        "and emits it as a signal named after the metric, with the sample's labels and the",
        "stats of the metric's kind (source/kind `metrics/rollup`). A stat marked *when data*",
        "is present only when the window has what it needs.",
        "",
    ]
    for kind, rollup in catalogue.ROLLUPS.items():
        out += [
            f"### {kind}",
            "",
            f"value: {rollup.value}",
            "",
            *_stats(rollup.stats),
            "",
        ]
    out += [
        "## Application metrics the built-in rules expect",
        "",
        "Publish these (names, kinds and at least these labels) and the built-in rules",
        "(`opsmesh setup-default-alerts`) alert on them.",
        "",
        "| metric | kind | means | labels |",
        "|---|---|---|---|",
    ]
    out += [
        f"| `{m.name}` | {m.metric_kind} | {m.meaning} | "
        + ", ".join(f"`{label}` ({meaning})" for label, meaning in m.labels.items())
        + " |"
        for m in catalogue.APPLICATION_METRICS
    ]
    out.append("")
    return "\n".join(out)


def _section(spec: SignalSpec) -> list[str]:
    lines = [
        f"### {spec.name}",
        "",
        f"{spec.summary[0].upper()}{spec.summary[1:]}. Emitted by {spec.emitted_by}"
        f" (source/kind `{spec.source}/{spec.kind}`).",
        "",
        f"value: {spec.value}",
        "",
        "| label | means |",
        "|---|---|",
        *(f"| `{label}` | {_cell(meaning)} |" for label, meaning in spec.labels.items()),
        "",
    ]
    if spec.stats:
        lines += [*_stats(spec.stats), ""]
    return lines


def _stats(stats: Mapping[str, StatSpec]) -> list[str]:
    return [
        "| stat | means |",
        "|---|---|",
        *(
            f"| `{name}` | {s.meaning}{'' if s.always else ' (when data)'} |"
            for name, s in stats.items()
        ),
    ]


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a bare ``|`` would end the cell."""
    return text.replace("|", "\\|")
