"""The development package adds its commands to `opsmesh` through the CLI's entry points."""

from __future__ import annotations

from click.testing import CliRunner

from opsmesh.cli import main as cli_main


def test_up_and_demo_traffic_join_the_opsmesh_command() -> None:
    listing = CliRunner().invoke(cli_main.cli, ["--help"])
    assert listing.exit_code == 0, listing.output
    for command in cli_main.DEVELOPMENT_COMMANDS:
        assert command in listing.output
        help_text = CliRunner().invoke(cli_main.cli, [command, "--help"])
        assert help_text.exit_code == 0, help_text.output
        assert "development command" not in help_text.output
