"""The development commands, joined to ``opsmesh`` through its ``opsmesh.cli`` entry points.

Their dependencies load when a command runs, so ``opsmesh --help`` stays fast.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click


@click.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path(".opsmesh"),
    show_default=True,
    help="Where logs, data and received notifications go.",
)
@click.option("--no-demo", is_flag=True, help="Do not start the demo shop and its load generator.")
def up(workdir: Path, no_demo: bool) -> None:
    """Start Kafka, PostgreSQL, Redis, the five services, a webhook sink and the demo shop."""
    from opsmesh_dev.up import run_up

    raise SystemExit(run_up(workdir, demo=not no_demo))


@click.command("demo-traffic")
@click.option("--bootstrap", envvar="OPSMESH_KAFKA_BOOTSTRAP", required=True)
@click.option("--interval", type=float, default=0.5, show_default=True)
def demo_traffic(bootstrap: str, interval: float) -> None:
    """Publish demo metrics, heartbeats and slow queries until stopped."""
    from opsmesh_dev.tools.traffic import run

    asyncio.run(run(bootstrap, interval))
