"""What the console is made of once it runs: the HTTP client to the other services, the
alert feed over the alert-engine, the sessions and the templates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jinja2
from aiohttp import web
from prometheus_client import CollectorRegistry

from console.core.runbooks import Runbooks
from console.core.sessions import Sessions
from console.pipeline.feed import AlertFeed
from console.rendering import environment
from console.settings import ConsoleSettings
from console.upstream import AlertEngine, Notifier, Upstream
from opsmesh.clock import Clock
from opsmesh.periodic import FirstRun, Periodic, periodic_metrics
from opsmesh.web import Worker
from opsmesh.web.tokens import ApiTokens


@dataclass
class Services:
    settings: ConsoleSettings
    clock: Clock
    http: aiohttp.ClientSession
    engine: AlertEngine
    notifier: Notifier
    queries: Upstream
    health: Upstream
    feed: AlertFeed
    sessions: Sessions
    tokens: ApiTokens
    templates: jinja2.Environment
    runbooks: Runbooks
    registry: CollectorRegistry

    async def aclose(self) -> None:
        await self.http.close()


SERVICES = web.AppKey("console_services", Services)


async def bootstrap(
    settings: ConsoleSettings, clock: Clock, registry: CollectorRegistry
) -> Services:
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout_s),
        # The console's own requests carry no cookies of the user's.
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    read_token = settings.alert_engine_read_token
    engine = AlertEngine(
        "alert-engine",
        settings.alert_engine_url,
        http,
        read_token.get_secret_value() if read_token else None,
    )
    return Services(
        settings=settings,
        clock=clock,
        http=http,
        engine=engine,
        notifier=Notifier("notifier", settings.notifier_url, http),
        queries=Upstream("query-analyzer", settings.query_analyzer_url, http),
        health=Upstream("health-aggregator", settings.health_aggregator_url, http),
        feed=AlertFeed(engine, clock),
        sessions=Sessions(clock, settings.session_ttl_s),
        tokens=ApiTokens.load(settings.api_tokens.get_secret_value(), settings.api_tokens_file),
        templates=environment(),
        runbooks=Runbooks(Path(settings.runbooks_dir)),
        registry=registry,
    )


def workers(services: Services) -> Sequence[tuple[str, Worker]]:
    feed = Periodic(
        "console_alert_feed",
        services.feed.refresh,
        services.settings.poll_s,
        periodic_metrics(services.registry),
        FirstRun.AT_START,
    )
    return [("alert-feed", feed.run)]
