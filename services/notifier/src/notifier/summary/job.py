"""Send the daily summary email.

Coupling, on purpose and read-only: alert-engine records every alert state transition in
``alert_engine.alert_history`` (same PostgreSQL database). Reading it gives the whole
day, including what happened while the notifier was down, which consuming
``opsmesh.alerts`` could not. If alert-engine's history table changes shape, this query
is the one place to follow it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Coroutine
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from psycopg_pool import AsyncConnectionPool

from notifier.channels.factory import tls_context
from notifier.core.rendering import render_named
from notifier.core.summary import Summary, Transition, next_run, summarise
from notifier.core.webhook_payload import rfc3339
from notifier.settings import NotifierSettings
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.runtime import Runtime

log = get_logger(__name__)


async def load_day(pool: AsyncConnectionPool, start: float, end: float) -> Summary:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT fingerprint, rule, previous, state, extract(epoch FROM at)"
            " FROM alert_engine.alert_history"
            " WHERE at >= to_timestamp(%s) AND at < to_timestamp(%s) ORDER BY at, id",
            (start, end),
        )
        rows = await cursor.fetchall()
        # Alerts already firing at the start: their last transition before it was to firing.
        cursor = await conn.execute(
            "SELECT DISTINCT ON (fingerprint) fingerprint, state, extract(epoch FROM at)"
            " FROM alert_engine.alert_history WHERE at < to_timestamp(%s)"
            " AND at >= to_timestamp(%s) - interval '30 days'"
            " ORDER BY fingerprint, at DESC, id DESC",
            (start, start),
        )
        before = [(r[0], float(r[2])) for r in await cursor.fetchall() if r[1] == "firing"]
    transitions = [Transition(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]
    return summarise(transitions, start=start, end=end, firing_before=before)


def _stamp(epoch: float) -> str:
    return rfc3339(epoch)[:16].replace("T", " ") + " UTC"


def summary_message(summary: Summary, *, sender: str, recipients: list[str]) -> EmailMessage:
    data: dict[str, Any] = {
        "s": summary,
        "start": _stamp(summary.start),
        "end": _stamp(summary.end),
        "fmt": lambda s: "n/a" if s is None else f"{s / 60:.1f} min",
    }
    message = EmailMessage()
    message["Subject"] = (
        f"opsmesh daily summary: {summary.opened} opened, {summary.resolved} resolved"
    )
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(render_named(None, "summary.txt.j2", data))
    message.add_alternative(render_named(None, "summary.html.j2", data, html=True), "html")
    return message


async def send_summary(
    summary: Summary,
    *,
    host: str,
    port: int,
    sender: str,
    recipients: list[str],
    username: str | None,
    password: str | None,
    start_tls: bool,
    tls_context: ssl.SSLContext,
    timeout_s: float,
) -> None:
    """One summary email over SMTP, with the same TLS trust as the email channel."""
    await aiosmtplib.send(
        summary_message(summary, sender=sender, recipients=recipients),
        hostname=host,
        port=port,
        username=username,
        password=password,
        start_tls=start_tls,
        tls_context=tls_context,
        timeout=timeout_s,
    )


def summary_worker(
    settings: NotifierSettings, runtime: Runtime
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    host, _, port = settings.summary_smarthost.rpartition(":")

    tls = tls_context(settings.ca_file)

    async def send_once(now: float) -> None:
        summary = await load_day(runtime.pool, now - 86_400, now)
        password = settings.summary_password
        await send_summary(
            summary,
            host=host,
            port=int(port),
            sender=settings.summary_from,
            recipients=list(settings.summary_recipients),
            username=settings.summary_username,
            password=password.get_secret_value() if password else None,
            start_tls=settings.summary_require_tls,
            tls_context=tls,
            timeout_s=settings.send_timeout_s,
        )
        log.info("daily summary sent", opened=summary.opened, resolved=summary.resolved)

    def until_next() -> float:
        now = runtime.clock.now()
        return next_run(now, settings.summary_hour_utc) - now

    async def send_now() -> None:
        await send_once(runtime.clock.now())

    # A missed summary is not worth a crash; the next day's comes anyway.
    return Periodic(
        "daily_summary",
        send_now,
        until_next,
        periodic_metrics(runtime.registry),
        FirstRun.AFTER_INTERVAL,
    ).run
