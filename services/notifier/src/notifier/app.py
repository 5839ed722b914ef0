"""The composition root: the one place notifier is wired together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer
from notifier.amtemplate.build import find as find_renderer
from notifier.channels.factory import destinations, tls_context
from notifier.channels.safe_http import safe_session
from notifier.core.retry import RetryPolicy
from notifier.core.targets import TargetPolicy
from notifier.delivery.log import DeliveryLog
from notifier.delivery.ratelimit import RedisRateLimiter
from notifier.delivery.refs import PgMessageRefs
from notifier.delivery.retention import purge_jobs
from notifier.openapi import DOCUMENT as OPENAPI
from notifier.pipeline.deliver_stage import DeliverStage
from notifier.pipeline.lanes import Destination, Sender
from notifier.receivers import Receivers, TemplateLanguage, load_receivers
from notifier.rendering import BUDGET
from notifier.settings import NotifierSettings
from opsmesh.clock import Clock
from opsmesh.events.notifications import NotificationRequested
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.runtime import Runtime
from opsmesh.topics import NOTIFICATIONS, Topic
from opsmesh.web.app import ServiceSpec, Worker, init_app
from opsmesh.web.openapi import add_openapi_route

SERVICE = "notifier"
_SESSION_KEY = web.AppKey("http_session", aiohttp.ClientSession)


def alertmanager_templates(
    settings: NotifierSettings, receivers: Receivers
) -> AlertmanagerTemplates | None:
    """The Go renderer, when the receivers' templates are Alertmanager's; a missing
    renderer binary is an error at start that says how to build it."""
    if receivers.language is not TemplateLanguage.GO:
        return None
    renderer = GoRenderer(
        find_renderer(settings.amtemplate_bin),
        workers=settings.amtemplate_workers,
        max_seconds=BUDGET.max_seconds,
        max_output=settings.amtemplate_max_output_bytes,
        max_memory_mb=settings.amtemplate_max_memory_mb,
    )
    return AlertmanagerTemplates(renderer, receivers.templates)


def build(settings: NotifierSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    receivers = load_receivers(
        settings.receivers_file,
        settings.default_webhook_url,
        settings.template_language_choice(),
    )
    templates = alertmanager_templates(settings, receivers)
    policy = TargetPolicy.from_strings(settings.allowed_networks)
    tls = tls_context(settings.ca_file)
    sessions: list[aiohttp.ClientSession] = []

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        session = safe_session(policy, timeout_s=settings.send_timeout_s, ssl_context=tls)
        sessions.append(session)
        app[_SESSION_KEY] = session
        yield
        await session.close()

    async def templates_ctx(_: web.Application) -> AsyncIterator[None]:
        if templates is None:
            yield
            return
        # As Alertmanager at start: template files that do not parse stop the service.
        await templates.check()
        yield
        await templates.renderer.close()

    def workers() -> list[tuple[str, Worker]]:
        refs = PgMessageRefs(runtime.pool)
        by_receiver: dict[str, list[Destination]] = {
            name: destinations(
                receiver,
                session=sessions[0],
                policy=policy,
                clock=runtime.clock,
                refs=refs,
                timeout_s=settings.send_timeout_s,
                tls=tls,
                concurrency=settings.lane_concurrency,
                slack_rate_per_s=settings.slack_rate_per_s,
                templates=templates,
            )
            for name, receiver in receivers.by_name.items()
        }
        sender = Sender(
            retry=RetryPolicy(
                settings.retry_initial_s, settings.retry_max_s, settings.retry_deadline_s
            ),
            clock=runtime.clock,
            stop=asyncio.Event(),
            breaker_threshold=settings.breaker_failures,
            breaker_open_s=settings.breaker_open_s,
            shared=RedisRateLimiter(runtime.redis),
        )
        stage = DeliverStage(
            destinations=by_receiver.get,
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
                    for name, r in receivers.by_name.items()
                ]
            )

        app.router.add_get("/api/v1/receivers", list_receivers)
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
            ],
            readiness=runtime.readiness,
            workers=runtime.with_self_report(workers),
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
