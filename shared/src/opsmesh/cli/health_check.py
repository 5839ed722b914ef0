"""``opsmesh health-check``: every service's readiness, the broker, the database, Redis,
consumer lag and dead letters, as a table (or ``--json``); exits 1 when a check failed."""

from __future__ import annotations

import asyncio

import click

from opsmesh.healthcheck.report import as_json, as_table, exit_code
from opsmesh.healthcheck.run import DEFAULT_SERVICES, CheckPlan, run_checks
from opsmesh.kafka.connection import connection_options
from opsmesh.settings import CommonSettings, load_settings


def _services(given: tuple[str, ...]) -> dict[str, str]:
    services = dict(DEFAULT_SERVICES)
    for item in given:
        name, sep, url = item.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise click.BadParameter(
                f"{item!r} is not NAME=http(s)://HOST:PORT", param_hint="--service"
            )
        services[name] = url
    return services


@click.command("health-check")
@click.option(
    "--service",
    "services",
    multiple=True,
    envvar="OPSMESH_HEALTH_CHECK_SERVICES",
    help="NAME=URL of a service to ask /health/ready (repeatable; replaces that name's "
    "default, adds others such as console=http://127.0.0.1:8086). Defaults: the five "
    "services on 127.0.0.1:8081-8085. The broker, database and Redis come from "
    "OPSMESH_KAFKA_BOOTSTRAP, OPSMESH_PG_DSN and OPSMESH_REDIS_URL as for the services.",
)
@click.option(
    "--max-lag",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=0),
    help="A consumer group further behind than this many records fails. Lag is read from "
    "committed offsets, as kafka-consumer-groups shows it: metrics-ingest commits only past "
    "samples whose windows closed (a restart replays the open ones), so a busy metrics topic "
    "shows up to a window's worth of samples while it keeps up (15,000 seen under make up "
    "with the exporters' remote write).",
)
@click.option(
    "--max-dead-letters",
    default=1_000,
    show_default=True,
    type=click.IntRange(min=0),
    help="More dead letters kept in opsmesh.dlq than this fails.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1, max=120),
    help="Seconds each check may take.",
)
@click.option("--json", "as_json_", is_flag=True, help="Print the results as JSON.")
def health_check(
    services: tuple[str, ...], max_lag: int, max_dead_letters: int, timeout_s: float, as_json_: bool
) -> None:
    """Check the whole mesh from outside; exit 1 when any check failed."""
    settings = load_settings(CommonSettings)
    plan = CheckPlan(
        services=_services(services),
        kafka=connection_options(settings),
        pg_dsn=settings.pg_dsn.get_secret_value(),
        redis_url=settings.redis_url.get_secret_value(),
        max_lag=max_lag,
        max_dead_letters=max_dead_letters,
        timeout_s=timeout_s,
    )
    results = asyncio.run(run_checks(plan))
    click.echo(as_json(results) if as_json_ else as_table(results))
    raise SystemExit(exit_code(results))
