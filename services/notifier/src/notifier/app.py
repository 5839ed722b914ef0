"""The composition root: the one place notifier is wired together."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer
from notifier.amtemplate.build import find as find_renderer
from notifier.channels.factory import destinations, tls_context
from notifier.channels.safe_http import safe_session
from notifier.core.retry import RetryPolicy
from notifier.core.targets import TargetPolicy
from notifier.delivery.log import DeliveryLog
from notifier.delivery.refs import PgMessageRefs
from notifier.delivery.retention import purge_jobs
from notifier.openapi import DOCUMENT as OPENAPI
from notifier.pipeline.deliver_stage import DeliverStage
from notifier.pipeline.lanes import Destination, Sender
from notifier.receiver_table import ReceiverTable
from notifier.receivers import ReceiverConfig, Receivers, TemplateLanguage, load_receivers
from notifier.reload import Loaded, ReceiversReload
from notifier.rendering import BUDGET
from notifier.settings import NotifierSettings
from opsmesh.clock import Clock
from opsmesh.events.notifications import NotificationRequested
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.periodic import periodic_metrics
from opsmesh.ratelimit import FallbackRateLimiter, MemoryRateLimiter, RedisRateLimiter
from opsmesh.reload import ConfigReloader, SighupReload
from opsmesh.runtime import Runtime
from opsmesh.topics import NOTIFICATIONS, Topic
from opsmesh.web.app import ServiceSpec, Worker, init_app
from opsmesh.web.openapi import add_openapi_route
from opsmesh.web.reload import ReloadApi
from opsmesh.web.tokens import WRITE, ApiTokens, require_scope

SERVICE = "notifier"
# The destinations' buckets in Redis (GCRA in seconds; the buckets before them kept
# milliseconds under "notifier:rate:", which a rolling upgrade must not misread).
RATE_LIMIT_PREFIX = "notifier:gcra:"
_SESSION_KEY = web.AppKey("http_session", aiohttp.ClientSession)


class Renderer:
    """The Go renderer of Alertmanager templates, made when first needed (at start, or
    by a reload that switches to Alertmanager's templates); a missing renderer binary
    is an error that says how to build it."""

    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings
        self.made: GoRenderer | None = None

    def __call__(self) -> GoRenderer:
        if self.made is None:
            self.made = GoRenderer(
                find_renderer(self._settings.amtemplate_bin),
                workers=self._settings.amtemplate_workers,
                max_seconds=BUDGET.max_seconds,
                max_output=self._settings.amtemplate_max_output_bytes,
                max_memory_mb=self._settings.amtemplate_max_memory_mb,
            )
        return self.made


def alertmanager_templates(
    settings: NotifierSettings, receivers: Receivers, renderer: Renderer | None = None
) -> AlertmanagerTemplates | None:
    """Alertmanager's templates, when the receivers' templates are Go templates."""
    if receivers.language is not TemplateLanguage.GO:
        return None
    return AlertmanagerTemplates((renderer or Renderer(settings))(), receivers.templates)


# How a caller gives a token, in the 401 itself.
HOW_TO = "Send 'Authorization: Bearer <token>' (tokens: NOTIFIER_API_TOKENS, 'token:write')."


def reload_auth(tokens: ApiTokens) -> Middleware:
    """``POST /-/reload`` needs a ``write`` token; the notifier's reads are public."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/-/reload" and not request.match_info.http_exception:
            require_scope(request, tokens, WRITE, HOW_TO)
        return await handler(request)

    return middleware


def receiver_table(
    settings: NotifierSettings,
    runtime: Runtime,
    *,
    receivers: Receivers,
    templates: AlertmanagerTemplates | None,
    renderer: Renderer,
    sessions: list[aiohttp.ClientSession],
    policy: TargetPolicy,
    tls: ssl.SSLContext,
) -> tuple[ReceiverTable, ConfigReloader[Loaded] | None]:
    """The receivers in use and, with a receivers file, what reloads them."""

    def build_destinations(
        receiver: ReceiverConfig, templates: AlertmanagerTemplates | None, generation: int
    ) -> list[Destination]:
        return destinations(
            receiver,
            session=sessions[0],  # the service's, made when it starts
            policy=policy,
            clock=runtime.clock,
            refs=PgMessageRefs(runtime.pool),
            timeout_s=settings.send_timeout_s,
            tls=tls,
            concurrency=settings.lane_concurrency,
            slack_rate_per_s=settings.slack_rate_per_s,
            templates=templates,
            generation=generation,
        )

    table = ReceiverTable(receivers, templates, build_destinations, runtime.clock)
    if not settings.receivers_file:
        return table, None
    reload = ReceiversReload(
        table,
        default_webhook_url=settings.default_webhook_url,
        language=settings.template_language_choice(),
        renderer=renderer,
    )
    path = Path(settings.receivers_file)
    return table, reload.reloader(path, clock=runtime.clock, registry=runtime.registry)


def build(settings: NotifierSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    receivers = load_receivers(
        settings.receivers_file,
        settings.default_webhook_url,
        settings.template_language_choice(),
    )
    renderer = Renderer(settings)
    templates = alertmanager_templates(settings, receivers, renderer)
    policy = TargetPolicy.from_strings(settings.allowed_networks)
    tls = tls_context(settings.ca_file)
    sessions: list[aiohttp.ClientSession] = []
    tokens = ApiTokens.load(
        settings.api_tokens.get_secret_value() if settings.api_tokens else None,
        settings.api_tokens_file,
    )

    table, reloader = receiver_table(
        settings,
        runtime,
        receivers=receivers,
        templates=templates,
        renderer=renderer,
        sessions=sessions,
        policy=policy,
        tls=tls,
    )
    on_sighup = SighupReload(reloader)

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        session = safe_session(policy, timeout_s=settings.send_timeout_s, ssl_context=tls)
        sessions.append(session)
        app[_SESSION_KEY] = session
        yield
        await session.close()

    async def templates_ctx(_: web.Application) -> AsyncIterator[None]:
        if templates is not None:
            # As Alertmanager at start: template files that do not parse stop the service.
            await templates.check()
        try:
            yield
        finally:
            if renderer.made is not None:
                await renderer.made.close()

    async def sighup_ctx(_: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        on_sighup.install(loop)
        try:
            yield
        finally:
            on_sighup.remove(loop)

    def workers() -> list[tuple[str, Worker]]:
        sender = Sender(
            retry=RetryPolicy(
                settings.retry_initial_s, settings.retry_max_s, settings.retry_deadline_s
            ),
            clock=runtime.clock,
            stop=asyncio.Event(),
            breaker_threshold=settings.breaker_failures,
            breaker_open_s=settings.breaker_open_s,
            limiter=FallbackRateLimiter(
                RedisRateLimiter(runtime.redis, RATE_LIMIT_PREFIX),
                MemoryRateLimiter(runtime.clock.monotonic),
                timeout_s=settings.rate_limit_timeout_s,
                retry_after_s=settings.rate_limit_retry_s,
                monotonic=runtime.clock.monotonic,
            ),
            removed=table.removed,
        )
        stage = DeliverStage(
            destinations=table.destinations,
            missing=table.missing,
            delivery_log=DeliveryLog(
                runtime.pool, runtime.redis, claim_ttl_s=settings.retry_deadline_s + 60
            ),
            producer=runtime.producer,
            dead_letters=runtime.dead_letters,
            sender=sender,
            clock=runtime.clock,
            registry=runtime.registry,
            instance=runtime.instance,
            max_pending_per_lane=settings.lane_max_pending,
            # Within the service's drain budget, leaving time for the final commit.
            drain_wait_s=settings.shutdown_timeout_s * 0.6,
        )
        topic = (
            NOTIFICATIONS
            if settings.requests_topic == NOTIFICATIONS.name
            else Topic(settings.requests_topic, NOTIFICATIONS.partitions, NOTIFICATIONS.key)
        )
        config = ConsumerConfig(group_id=settings.consumer_group, topics=(topic,))
        purger = runtime.purger(
            purge_jobs(runtime.pool, delivery_retention_days=settings.delivery_retention_days)
        )
        out: list[tuple[str, Worker]] = [
            ("deliver", runtime.consumer(config, NotificationRequested, stage)),
            ("lanes", stage.run),
            ("retention", purger.run),
        ]
        if reloader is not None and settings.config_check_s > 0:
            out.append(
                (
                    "config-watch",
                    reloader.watcher(settings.config_check_s, periodic_metrics(runtime.registry)),
                )
            )
        if settings.summary_recipients:
            from notifier.summary.job import summary_worker  # noqa: PLC0415 - optional

            out.append(("summary", summary_worker(settings, runtime)))
        return out

    def routes(app: web.Application) -> None:
        async def list_receivers(_: web.Request) -> web.Response:
            return web.json_response(
                [
                    {
                        "name": name,
                        "integrations": [i for i, _, _ in r.integrations()],
                    }
                    for name, r in table.receivers.by_name.items()
                ]
            )

        app.router.add_get("/api/v1/receivers", list_receivers)
        ReloadApi(
            reloader, no_file="no receivers file to reload (NOTIFIER_RECEIVERS_FILE is not set)"
        ).register(app)
        add_openapi_route(app, OPENAPI)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[
                runtime.kafka_ctx,
                runtime.postgres_ctx("notifier.migrations"),
                runtime.redis_ctx,
                http_ctx,
                templates_ctx,
                sighup_ctx,
            ],
            readiness=runtime.readiness,
            workers=runtime.with_self_report(workers),
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
            middlewares=[reload_auth(tokens)],
        )
    )
