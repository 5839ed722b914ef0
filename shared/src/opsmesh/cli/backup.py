"""``opsmesh backup``: the disaster-recovery copy of the mesh's state (runbooks/
disaster-recovery.md), and its restore.

PostgreSQL: ``pg_dump`` of the services' schemas and the migration bookkeeping (custom
format, restored by ``pg_restore --clean``). Kafka: ``backup_kafka`` (the topics' records
and the consumer groups' positions in them).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import click

from opsmesh.settings import ENV_KAFKA, ENV_PG
from opsmesh.topics import ALL_TOPICS

# What the services keep in PostgreSQL: one schema each, plus the public tables that say
# which migrations (and which Kafka offsets, for exactly-once writes) were applied.
SCHEMAS = ("alert_engine", "notifier", "query_analyzer", "health_aggregator", "metrics_ingest")
PUBLIC_TABLES = ("public.opsmesh_schema_migrations", "public.opsmesh_applied_offsets")
# Two dumps: pg_dump ignores --schema when any --table is given.
PG_FILE = "postgres.dump"
PG_PUBLIC_FILE = "postgres-public.dump"
TOPICS_DIR = "topics"


def pg_dump_commands(dsn: str, directory: Path) -> list[list[str]]:
    def dump(target: Path) -> list[str]:
        return ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", f"--dbname={dsn}"]

    return [
        dump(directory / PG_FILE) + [f"--schema={schema}" for schema in SCHEMAS],
        dump(directory / PG_PUBLIC_FILE) + [f"--table={table}" for table in PUBLIC_TABLES],
    ]


def pg_restore_command(dsn: str, source: Path) -> list[str]:
    # --clean --if-exists: a restore over a damaged database replaces what it finds.
    return [
        "pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error",
        f"--dbname={dsn}", str(source),
    ]  # fmt: skip


def _run(command: list[str]) -> None:
    # The DSN is an argument (it may hold a password): say which tool failed, not the line.
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"{command[0]} failed: {done.stderr.strip()[-2000:]}")


_dsn = click.option("--dsn", envvar=ENV_PG, required=True, help="PostgreSQL DSN ($OPSMESH_PG_DSN).")
_bootstrap = click.option(
    "--bootstrap",
    envvar=ENV_KAFKA,
    required=True,
    help="Kafka bootstrap ($OPSMESH_KAFKA_BOOTSTRAP).",
)


@click.group()
def backup() -> None:
    """Back up and restore the mesh's PostgreSQL state and Kafka topics."""


@backup.command("create")
@click.argument("directory", type=click.Path(path_type=Path))
@_dsn
@_bootstrap
@click.option(
    "--topic", "topics", multiple=True, help="Export only these topics (default: all the mesh's)."
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="Keep these consumer groups' positions (default: the mesh's groups).",
)
def create(
    directory: Path, dsn: str, bootstrap: str, topics: tuple[str, ...], groups: tuple[str, ...]
) -> None:
    """Write DIRECTORY/postgres.dump, postgres-public.dump and topics/."""
    from opsmesh.cli.backup_kafka import MESH_GROUPS, export_topics

    (directory / TOPICS_DIR).mkdir(parents=True, exist_ok=True)
    for command in pg_dump_commands(dsn, directory):
        _run(command)
    click.echo(f"postgres: {directory / PG_FILE}, {directory / PG_PUBLIC_FILE}")
    counts = asyncio.run(
        export_topics(
            bootstrap,
            topics or [t.name for t in ALL_TOPICS],
            groups or MESH_GROUPS,
            directory / TOPICS_DIR,
        )
    )
    for topic, count in counts.items():
        click.echo(f"kafka: {topic}: {count} records")


@backup.command("restore")
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@_dsn
@_bootstrap
def restore(directory: Path, dsn: str, bootstrap: str) -> None:
    """Restore what `opsmesh backup create` wrote. Stop the services first: nothing may
    write meanwhile, and Kafka refuses to move a consumer group that has members."""
    from opsmesh.cli.backup_kafka import import_topics

    for name in (PG_FILE, PG_PUBLIC_FILE):
        _run(pg_restore_command(dsn, directory / name))
    click.echo("postgres: restored")
    counts = asyncio.run(import_topics(bootstrap, directory / TOPICS_DIR))
    for topic, count in counts.items():
        click.echo(f"kafka: {topic}: {count} records")
