"""``opsmesh``: the one CLI for operator tasks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from opsmesh.cli.backup import backup
from opsmesh.cli.cdn import cdn
from opsmesh.cli.dlq import dlq
from opsmesh.cli.health_check import health_check
from opsmesh.settings import ENV_PG

# Commands the development package (``opsmesh-dev``, not part of a production install)
# contributes; named here only to explain their absence.
DEVELOPMENT_COMMANDS = frozenset({"up", "demo-traffic"})


class _PluginGroup(click.Group):
    """Commands from the services join through ``opsmesh.cli`` entry points, so each
    service owns its commands (``opsmesh optimize-queries``, ``opsmesh rules ...``), and
    the development package adds ``opsmesh up`` and ``opsmesh demo-traffic``."""

    def _plugins(self) -> dict[str, click.Command]:
        from importlib.metadata import entry_points

        found = {}
        for ep in entry_points(group="opsmesh.cli"):
            command = ep.load()
            if not isinstance(command, click.Command):
                raise TypeError(f"entry point {ep.value} is not a click command")
            found[ep.name] = command
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name) or self._plugins().get(cmd_name)
        if command is None and cmd_name in DEVELOPMENT_COMMANDS:
            ctx.fail(
                f"`opsmesh {cmd_name}` is a development command, and the development package "
                "(opsmesh-dev) is not installed here: run it from a checkout of the "
                "repository after `make deps`."
            )
        return command


@click.group(cls=_PluginGroup)
@click.version_option(package_name="opsmesh-shared")
def cli() -> None:
    """opsmesh: the production-readiness mesh."""


@cli.command()
@click.option(
    "--dsn", envvar=ENV_PG, required=True, help="PostgreSQL DSN (default: $OPSMESH_PG_DSN)."
)
def migrate(dsn: str) -> None:
    """Apply every component's pending schema migrations."""
    from opsmesh.db.migrations import apply_all

    applied = asyncio.run(apply_all(dsn))
    for component, versions in applied.items():
        status = "applied " + ", ".join(map(str, versions)) if versions else "up to date"
        click.echo(f"{component}: {status}")


@cli.group()
def schema() -> None:
    """Event schemas."""


@schema.command("export")
@click.argument("directory", type=click.Path(path_type=Path), default=Path("docs/schemas"))
def schema_export(directory: Path) -> None:
    """Write a JSON Schema file per event type to DIRECTORY."""
    from opsmesh.events.schema import export

    for path in export(directory):
        click.echo(str(path))


@cli.command()
@click.option("--markdown", is_flag=True, help="The catalogue as docs/signals.md.")
def signals(markdown: bool) -> None:
    """List the signal catalogue: every signal the services emit, its value, labels, stats
    (a stat marked ? is present only when there is data for it)."""
    from opsmesh import catalogue_doc

    click.echo(catalogue_doc.markdown() if markdown else catalogue_doc.listing(), nl=not markdown)


cli.add_command(dlq)
cli.add_command(backup)
cli.add_command(cdn)
cli.add_command(health_check)
