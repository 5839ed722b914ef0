"""``opsmesh cdn purge|status``: purge the CDN providers through the mesh, and see them.

``purge`` publishes a ``CdnPurgeRequested`` on ``opsmesh.cdn-purges``; the notifier purges
each configured provider (or those named with ``--provider``) once per purge id, retrying
transient failures and dead-lettering the rest. ``status`` shows each provider's canary
probe as health-aggregator holds it (service ``cdn``, one check per provider) and the
newest purges' outcomes from the notifier's delivery log (receiver ``cdn``).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import aiohttp
import click
import msgspec

from opsmesh.events.cdn import (
    CDN_HEALTH_SERVICE,
    PURGE_RECEIVER,
    CdnPurgeRequested,
    CdnPurgeScope,
    provider_of,
    purge_id_of,
)
from opsmesh.kafka.codec import decode, encode
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.topics import CDN_PURGES, Topic

HTTP_TIMEOUT_S = 10.0


@click.group()
def cdn() -> None:
    """CDN providers: purges through the mesh, and their health."""


def purge_event(
    *,
    urls: Sequence[str],
    prefixes: Sequence[str],
    tags: Sequence[str],
    everything: bool,
    providers: Sequence[str],
    purge_id: str | None,
    reason: str,
    now: float,
) -> CdnPurgeRequested:
    """The event the options describe; click.UsageError when they describe none, or more
    than one scope, or break the event's limits."""
    given = [
        (scope, list(values))
        for scope, values in (
            (CdnPurgeScope.URL, urls),
            (CdnPurgeScope.PREFIX, prefixes),
            (CdnPurgeScope.TAG, tags),
        )
        if values
    ]
    if everything:
        given.append((CdnPurgeScope.ALL, []))
    if len(given) != 1:
        raise click.UsageError("give exactly one of --url, --prefix, --tag (repeatable) or --all")
    scope, values = given[0]
    event = CdnPurgeRequested(
        id=purge_id or f"cli-{uuid.uuid4().hex}",
        scope=scope,
        values=values,
        providers=list(providers),
        source="cli",
        reason=reason,
        requested_at=now,
    )
    try:  # the limits the notifier will decode it with
        return decode(CdnPurgeRequested, encode(event))
    except msgspec.ValidationError as exc:
        raise click.UsageError(f"not a valid purge: {exc}") from None


@cdn.command()
@click.option("--url", "urls", multiple=True, help="A URL to purge (repeatable).")
@click.option("--prefix", "prefixes", multiple=True, help="A URL prefix to purge (repeatable).")
@click.option("--tag", "tags", multiple=True, help="A cache tag / surrogate key (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Everything the providers cache.")
@click.option(
    "--provider", "providers", multiple=True, help="Only this provider (repeatable; default all)."
)
@click.option("--id", "purge_id", default=None, help="The purge's id (default: a new one).")
@click.option("--reason", default="", help="Why, for the people reading the outcome.")
@click.option(
    "--topic",
    default=CDN_PURGES.name,
    show_default=True,
    help="The purge topic the notifier consumes (its NOTIFIER_CDN_PURGES_TOPIC).",
)
@click.option(
    "--bootstrap",
    envvar="OPSMESH_KAFKA_BOOTSTRAP",
    required=True,
    help="Kafka bootstrap servers ($OPSMESH_KAFKA_BOOTSTRAP).",
)
def purge(
    *,
    urls: tuple[str, ...],
    prefixes: tuple[str, ...],
    tags: tuple[str, ...],
    everything: bool,
    providers: tuple[str, ...],
    purge_id: str | None,
    reason: str,
    topic: str,
    bootstrap: str,
) -> None:
    """Publish a purge; the notifier purges each provider once per purge id."""
    event = purge_event(
        urls=urls,
        prefixes=prefixes,
        tags=tags,
        everything=everything,
        providers=providers,
        purge_id=purge_id,
        reason=reason,
        now=time.time(),
    )
    target = (
        CDN_PURGES
        if topic == CDN_PURGES.name
        else Topic(topic, CDN_PURGES.partitions, CDN_PURGES.key)
    )
    asyncio.run(_publish(bootstrap, target, event))
    click.echo(f"purge {event.id} published to {target.name} ({event.scope})")


async def _publish(bootstrap: str, topic: Topic, event: CdnPurgeRequested) -> None:
    producer = EventProducer({"bootstrap_servers": bootstrap}, source="/opsmesh/cli")
    await producer.start()
    try:
        await producer.publish(Outgoing(topic, event.id, event))
    finally:
        await producer.stop()


@cdn.command()
@click.option(
    "--health-aggregator",
    "health_url",
    envvar="OPSMESH_HEALTH_AGGREGATOR_URL",
    default="http://127.0.0.1:8085",
    show_default=True,
    help="health-aggregator's URL ($OPSMESH_HEALTH_AGGREGATOR_URL).",
)
@click.option(
    "--notifier",
    "notifier_url",
    envvar="OPSMESH_NOTIFIER_URL",
    default="http://127.0.0.1:8083",
    show_default=True,
    help="The notifier's URL ($OPSMESH_NOTIFIER_URL).",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print both answers as JSON.")
def status(health_url: str, notifier_url: str, limit: int, as_json: bool) -> None:
    """Each provider's canary health and the newest purges' outcomes; exit 1 when either
    service could not be read."""
    health, purges, unread = asyncio.run(_status(health_url, notifier_url, limit))
    if as_json:
        click.echo(msgspec.json.encode({"providers": health, "purges": purges}).decode())
    else:
        click.echo(render_status(health, purges))
    if unread:
        sys.exit(1)


async def _status(
    health_url: str, notifier_url: str, limit: int
) -> tuple[list[dict[str, Any]] | str, list[dict[str, Any]] | str, bool]:
    """The providers' checks and the purges (or why not), and whether a read failed."""
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        health = await _get(
            session, f"{health_url.rstrip('/')}/api/v1/services/{CDN_HEALTH_SERVICE}"
        )
        purges = await _get(
            session,
            f"{notifier_url.rstrip('/')}/api/v1/deliveries",
            {"receiver": PURGE_RECEIVER, "limit": str(limit)},
        )
    checks: list[dict[str, Any]] | str
    if isinstance(health, dict):
        checks = list(health.get("checks", []))
    elif health is None:
        checks = "no provider is probed: health-aggregator knows no service 'cdn'"
    else:
        checks = health
    rows: list[dict[str, Any]] | str = purges if isinstance(purges, list | str) else []
    return checks, rows, isinstance(health, str) or isinstance(purges, str)


async def _get(
    session: aiohttp.ClientSession, url: str, params: dict[str, str] | None = None
) -> Any:
    """The JSON answer; None for a 404; a string saying why when there is none."""
    try:
        async with session.get(url, params=params) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                return f"{url}: HTTP {response.status}"
            return await response.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{url}: {type(exc).__name__}: {exc}"


def render_status(health: list[dict[str, Any]] | str, purges: list[dict[str, Any]] | str) -> str:
    """The two tables, or why either is missing."""
    lines = ["CDN providers (health-aggregator, service cdn):"]
    if isinstance(health, str):
        lines.append(f"  {health}")
    else:
        for check in sorted(health, key=lambda c: str(c.get("check"))):
            lines.append(
                f"  {check.get('check', '?'):<20} {check.get('status', '?'):<5}"
                f" {check.get('output') or ''}"
            )
    lines.append("Recent purges (notifier delivery log, newest first):")
    if isinstance(purges, str):
        lines.append(f"  {purges}")
    elif not purges:
        lines.append("  none")
    else:
        for row in purges:
            key = str(row.get("idempotency_key", ""))
            integration = str(row.get("integration", ""))
            provider = provider_of(integration) or integration
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.get("finished_at", 0)))
            error = f"  {row['error']}" if row.get("error") else ""
            lines.append(
                f"  {when} {purge_id_of(key) or key:<30} {provider:<16}"
                f" {row.get('result', '?'):<9} attempts={row.get('attempts', '?')}{error}"
            )
    return "\n".join(lines)
