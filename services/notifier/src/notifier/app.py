"""The composition root: the one place notifier is wired together."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from notifier.channels.base import Channel
from notifier.channels.safe_http import safe_session
from notifier.channels.webhook import WebhookChannel
from notifier.core.retry import RetryPolicy
from notifier.core.targets import TargetPolicy
from notifier.delivery.log import DeliveryLog
from notifier.pipeline.deliver_stage import DeliverStage
from notifier.receivers import Receivers, load_receivers
from notifier.settings import NotifierSettings
from opsmesh.clock import Clock
from opsmesh.events.notifications import NotificationRequested
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.runtime import Runtime
from opsmesh.topics import GROUP_NOTIFIER, NOTIFICATIONS
from opsmesh.web.app import ServiceSpec, Worker, init_app

SERVICE = "notifier"
_SESSION_KEY = web.AppKey("http_session", aiohttp.ClientSession)


def build(settings: NotifierSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    receivers = load_receivers(settings.receivers_file, settings.default_webhook_url)
    policy = TargetPolicy.from_strings(settings.allowed_networks)
    sessions: list[aiohttp.ClientSession] = []

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        session = safe_session(policy, timeout_s=settings.send_timeout_s)
        sessions.append(session)
        app[_SESSION_KEY] = session
        yield
        await session.close()

    def channels(session: aiohttp.ClientSession, configured: Receivers) -> dict[str, Channel]:
        out: dict[str, Channel] = {}
        for name, receiver in configured.by_name.items():
            if receiver.webhook_configs:
                hook = receiver.webhook_configs[0]
                out[name] = WebhookChannel(
                    name="webhook",
                    url=hook.url,
                    secrets=hook.secrets,
                    session=session,
                    policy=policy,
                    clock=runtime.clock,
                )
        return out

    def workers() -> list[tuple[str, Worker]]:
        by_receiver = channels(sessions[0], receivers)
        stage = DeliverStage(
            channels=by_receiver.get,
            delivery_log=DeliveryLog(runtime.pool, runtime.redis),
            producer=runtime.producer,
            dead_letters=runtime.dead_letters,
            retry=RetryPolicy(
                settings.retry_initial_s, settings.retry_max_s, settings.retry_deadline_s
            ),
            clock=runtime.clock,
            registry=runtime.registry,
            instance=runtime.instance,
        )
        config = ConsumerConfig(group_id=GROUP_NOTIFIER, topics=(NOTIFICATIONS,))
        return [("deliver", runtime.consumer(config, NotificationRequested, stage))]

    def routes(app: web.Application) -> None:
        async def list_receivers(_: web.Request) -> web.Response:
            return web.json_response(
                [
                    {"name": name, "channels": ["webhook"] * len(r.webhook_configs)}
                    for name, r in receivers.by_name.items()
                ]
            )

        app.router.add_get("/api/v1/receivers", list_receivers)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[
                runtime.kafka_ctx,
                runtime.postgres_ctx("notifier.migrations"),
                runtime.redis_ctx,
                http_ctx,
            ],
            readiness=runtime.readiness,
            workers=workers,
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
        )
    )
