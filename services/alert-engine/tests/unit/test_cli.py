"""`opsmesh rules check|test` and `opsmesh setup-default-alerts`, through click's runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from alert_engine.cli import builtin_text, rules, setup_default_alerts
from alert_engine.core.rules import parse_rules
from opsmesh.cli.main import cli

GOOD = """
groups:
  - name: g
    rules:
      - alert: Hot
        signal: cpu
        op: ">"
        threshold: 1
"""

BAD = """
groups:
  - name: g
    rules:
      - alert: Hot
        signal: cpu
        op: ">"
      - alert: Gone
        kind: absence
        signal: heartbeat
        absent_for: soon
"""

TESTS = """
rule_files: [good.yml]
tests:
  - name: fires
    input_signals: [{name: cpu, values: "2"}]
    alert_rule_test:
      - eval_time: 0s
        alertname: Hot
        exp_alerts: [{exp_labels: {}}]
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "good.yml").write_text(GOOD)
    (tmp_path / "bad.yml").write_text(BAD)
    (tmp_path / "good_test.yml").write_text(TESTS)
    (tmp_path / "failing_test.yml").write_text(TESTS.replace('values: "2"', 'values: "0"'))
    (tmp_path / "broken_test.yml").write_text(TESTS.replace("good.yml", "bad.yml"))
    return tmp_path


def test_check_passes_a_valid_file(files: Path) -> None:
    result = CliRunner().invoke(rules, ["check", str(files / "good.yml")])
    assert result.exit_code == 0, result.output
    assert result.output == f"{files / 'good.yml'}: SUCCESS, 1 rule(s)\n"


def test_check_lists_every_located_error_and_exits_1(files: Path) -> None:
    result = CliRunner().invoke(rules, ["check", str(files / "good.yml"), str(files / "bad.yml")])
    assert result.exit_code == 1
    bad = files / "bad.yml"
    assert f"{bad}: groups[0] (g) rules[0] (Hot): field `threshold`: required" in result.output
    assert f"{bad}: groups[0] (g) rules[1] (Gone): field `absent_for`: invalid" in result.output
    assert f"{bad}: FAILED, 2 error(s)" in result.output
    assert "good.yml: SUCCESS" in result.output


SEVERAL = """
groups:
  - name: g
    rules:
      - alert: One
        signal: cpu
        op: "=~"
        threshold: high
        for: soon
      - alert: Two
        kind: absence
        signal: beat
        absent_for: 0s
        window: 5m
      - alert: Three
        signal: cpu
        op: ">"
        threshold: 1
        colour: red
"""


def test_check_reports_every_error_of_every_rule_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "several.yml"
    path.write_text(SEVERAL)
    result = CliRunner().invoke(rules, ["check", str(path)])
    assert result.exit_code == 1
    where = f"{path}: groups[0] (g)"
    for error in (
        "rules[0] (One): field `op`: Invalid enum value '=~'",
        "rules[0] (One): field `threshold`: Expected `float | null`, got `str`",
        "rules[0] (One): field `for`: invalid duration 'soon'",
        "rules[1] (Two): field `window`: not used by kind absence",
        "rules[1] (Two): field `absent_for`: must be more than 0s",
        "rules[2] (Three): field `colour`: unknown field",
    ):
        assert f"{where} {error}" in result.output
    assert f"{path}: FAILED, 6 error(s)" in result.output


def test_check_against_the_catalogue_names_what_no_service_emits(tmp_path: Path) -> None:
    path = tmp_path / "queries.yml"
    path.write_text(
        "groups:\n  - name: q\n    rules:\n"
        "      - {alert: A, kind: finding, signal: n_plus_one}\n"
        "      - {alert: B, kind: finding, signal: query_n_plus_one, stat: p95,"
        " op: '>', threshold: 1}\n"
    )
    plain = CliRunner().invoke(rules, ["check", str(path)])
    assert plain.exit_code == 0, plain.output
    result = CliRunner().invoke(rules, ["check", "--catalogue", str(path)])
    assert result.exit_code == 1
    assert "rule A: signal `n_plus_one`: no service emits it" in result.output
    assert "rule B: stat `p95`: query_n_plus_one carries" in result.output
    assert f"{path}: FAILED, 2 error(s)" in result.output
    builtin = tmp_path / "default.yml"
    CliRunner().invoke(setup_default_alerts, ["--output", str(builtin)])
    assert CliRunner().invoke(rules, ["check", "--catalogue", str(builtin)]).exit_code == 0


def test_check_reports_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(rules, ["check", str(tmp_path / "nope.yml")])
    assert result.exit_code == 1
    assert "nope.yml: cannot read" in result.output


def test_check_needs_a_file() -> None:
    assert CliRunner().invoke(rules, ["check"]).exit_code == 2


def test_test_passes(files: Path) -> None:
    result = CliRunner().invoke(rules, ["test", str(files / "good_test.yml")])
    assert result.exit_code == 0, result.output
    assert "  PASS  fires\n" in result.output
    assert "1/1 passed" in result.output


def test_test_failure_prints_the_diff_and_exits_1(files: Path) -> None:
    result = CliRunner().invoke(
        rules, ["test", str(files / "good_test.yml"), str(files / "failing_test.yml")]
    )
    assert result.exit_code == 1
    assert "  FAIL  fires\n" in result.output
    assert "alertname Hot, eval_time 0s:" in result.output
    assert '-{"labels": {"alertname": "Hot"}}' in result.output


def test_test_with_an_invalid_rule_file_is_an_error(files: Path) -> None:
    result = CliRunner().invoke(rules, ["test", str(files / "broken_test.yml")])
    assert result.exit_code == 1
    assert "ERROR" in result.output
    assert "rules[0] (Hot): field `threshold`" in result.output


def test_test_with_a_missing_rule_file_is_an_error(files: Path) -> None:
    (files / "lost_test.yml").write_text(TESTS.replace("good.yml", "lost.yml"))
    result = CliRunner().invoke(rules, ["test", str(files / "lost_test.yml")])
    assert result.exit_code == 1
    assert "ERROR cannot read" in result.output
    assert "lost.yml" in result.output


def test_setup_default_alerts_writes_the_builtin_rules_and_their_tests(tmp_path: Path) -> None:
    target = tmp_path / "rules" / "default.yml"
    result = CliRunner().invoke(setup_default_alerts, ["--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == builtin_text()
    tests = tmp_path / "rules" / "default_test.yml"
    assert tests.read_text() == builtin_text("default_test.yml")
    assert result.output == f"wrote 13 rules to {target} and their tests to {tests}\n"


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("default.yml", []),
        ("team rules.yaml", []),
        ("alerts.yml", ["--runbook-base", "https://wiki.example.com/runbooks"]),
    ],
)
def test_the_installed_rule_tests_pass_against_the_installed_rules(
    tmp_path: Path, name: str, extra: list[str]
) -> None:
    target = tmp_path / name
    installed = CliRunner().invoke(setup_default_alerts, ["--output", str(target), *extra])
    assert installed.exit_code == 0, installed.output
    tests = target.with_name(f"{target.stem}_test{target.suffix}")
    assert f"`opsmesh rules test {tests.name}`" in target.read_text()
    result = CliRunner().invoke(cli, ["rules", "test", str(tests)])
    assert result.exit_code == 0, result.output
    assert "13/13 passed" in result.output
    if extra:
        assert "https://wiki.example.com/runbooks/high-error-rate.md" in tests.read_text()


@pytest.mark.parametrize("existing", ["default.yml", "default_test.yml"])
def test_setup_default_alerts_refuses_to_overwrite_without_force(
    tmp_path: Path, existing: str
) -> None:
    target = tmp_path / "default.yml"
    (tmp_path / existing).write_text("mine")
    result = CliRunner().invoke(setup_default_alerts, ["--output", str(target)])
    assert result.exit_code == 1
    assert "use --force" in result.output
    assert (tmp_path / existing).read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == [existing]
    forced = CliRunner().invoke(setup_default_alerts, ["--output", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    assert target.read_text() == builtin_text()


def test_setup_default_alerts_defaults_to_the_engines_first_rules_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.yml", tmp_path / "b.yml"
    monkeypatch.setenv("ALERT_ENGINE_RULES_FILES", f" {first} , {second}")
    result = CliRunner().invoke(setup_default_alerts, [])
    assert result.exit_code == 0, result.output
    assert first.is_file()
    assert not second.exists()


def test_setup_default_alerts_without_a_target_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ALERT_ENGINE_RULES_FILES", raising=False)
    result = CliRunner().invoke(setup_default_alerts, [])
    assert result.exit_code == 2
    assert "--output" in result.output


def test_setup_default_alerts_can_link_runbooks_under_a_base_url(tmp_path: Path) -> None:
    target = tmp_path / "default.yml"
    base = "https://git.example.com/opsmesh/blob/main/runbooks/"
    result = CliRunner().invoke(
        setup_default_alerts, ["--output", str(target), "--runbook-base", base]
    )
    assert result.exit_code == 0, result.output
    urls = [r.annotations["runbook_url"] for r in parse_rules(target.read_text())]
    assert len(urls) == 13
    assert all(url.startswith(base) and url.endswith(".md") for url in urls)
    assert "runbooks/runbooks" not in target.read_text()
    assert yaml.safe_load(target.read_text())["groups"]  # still the same document


def test_the_opsmesh_cli_exposes_the_commands_through_entry_points() -> None:
    listing = CliRunner().invoke(cli, ["--help"])
    assert "rules" in listing.output
    assert "setup-default-alerts" in listing.output
    help_text = CliRunner().invoke(cli, ["rules", "--help"])
    assert "check" in help_text.output
    assert "test" in help_text.output
