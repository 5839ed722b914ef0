"""``opsmesh signals`` and the committed docs/signals.md are the catalogue."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from opsmesh import catalogue
from opsmesh.catalogue_doc import DOC_PATH, markdown
from opsmesh.cli.main import cli

ROOT = Path(__file__).resolve().parents[3]


def test_committed_signals_doc_matches_the_catalogue() -> None:
    committed = (ROOT / DOC_PATH).read_text()
    assert committed == markdown(), f"{DOC_PATH} is stale: run `make schemas`"


def test_opsmesh_signals_lists_every_signal_with_its_labels_and_stats() -> None:
    result = CliRunner().invoke(cli, ["signals"])
    assert result.exit_code == 0, result.output
    for spec in catalogue.SERVICE_SIGNALS:
        block = result.output.split(f"{spec.name}  (", 1)[1].split("\n\n", 1)[0]
        assert f"labels: {', '.join(spec.labels) or '-'}" in block
        assert f"value:  {spec.value}" in block
        for stat in spec.stats:
            assert stat in block
    for metric in catalogue.APPLICATION_METRICS:
        assert f"{metric.name}  (application {metric.metric_kind}, rolled up" in result.output
    assert "p95?" in result.output  # histogram quantiles: only when there is data


def test_opsmesh_signals_markdown_is_the_doc() -> None:
    result = CliRunner().invoke(cli, ["signals", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.output == markdown()
