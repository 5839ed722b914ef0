"""The CLI: built-in commands and commands that services contribute by entry point."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import click
import pytest
from click.testing import CliRunner

from opsmesh.cli import main as cli_main
from opsmesh.events import ALL_EVENTS


@click.command()
def hello() -> None:
    """Say hello."""
    click.echo("hello from a service")


def test_service_commands_join_through_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = EntryPoint(name="hello", value=f"{__name__}:hello", group="opsmesh.cli")
    monkeypatch.setattr(
        "importlib.metadata.entry_points",
        lambda group: [entry] if group == "opsmesh.cli" else [],
    )
    runner = CliRunner()
    listing = runner.invoke(cli_main.cli, ["--help"])
    assert "hello" in listing.output
    assert "schema" in listing.output
    result = runner.invoke(cli_main.cli, ["hello"])
    assert result.exit_code == 0
    assert result.output.strip() == "hello from a service"


def test_schema_export_writes_one_file_per_event(tmp_path) -> None:
    result = CliRunner().invoke(cli_main.cli, ["schema", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*.json"))) == len(ALL_EVENTS)


@pytest.mark.parametrize("command", sorted(cli_main.DEVELOPMENT_COMMANDS))
def test_development_commands_explain_their_absence(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """A production install has no opsmesh-dev: `opsmesh up` says why it is missing."""
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [])
    result = CliRunner().invoke(cli_main.cli, [command])
    assert result.exit_code == 2
    assert f"`opsmesh {command}` is a development command" in result.output
    assert "opsmesh-dev" in result.output
    assert "No such command" not in result.output


def test_an_unknown_command_is_still_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [])
    result = CliRunner().invoke(cli_main.cli, ["upp"])
    assert result.exit_code == 2
    assert "No such command 'upp'" in result.output
