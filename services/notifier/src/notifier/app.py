"""The composition root: the one place notifier is wired together.

Pure wiring: it opens nothing. The resources (Kafka, PostgreSQL, Redis) open as cleanup
contexts, then ``open_services`` (``notifier.bootstrap.bootstrap``; a test's fakes)
makes the service's objects from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from notifier.api import add_routes
from notifier.api.auth import reload_auth
from notifier.bootstrap import SERVICES, Configuration, Services, bootstrap, workers
from notifier.settings import NotifierSettings
from opsmesh.clock import Clock
from opsmesh.runtime import Runtime
from opsmesh.web import Bootstrap, ServiceSpec, init_app
from opsmesh.web.tokens import ApiTokens

SERVICE = "notifier"

OpenServices = Callable[[Runtime, NotifierSettings, Configuration], Awaitable[Services]]


def build(
    settings: NotifierSettings,
    clock: Clock | None = None,
    open_services: OpenServices = bootstrap,
) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    # Read here, before anything opens: a receivers file that does not load, or a
    # missing Go renderer, stops the service at start with the reason.
    configuration = Configuration.load(settings)
    tokens = ApiTokens.load(
        settings.api_tokens.get_secret_value() if settings.api_tokens else None,
        settings.api_tokens_file,
    )

    async def open_() -> Services:
        return await open_services(runtime, settings, configuration)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[
                runtime.kafka_ctx,
                runtime.postgres_ctx("notifier.migrations"),
                runtime.redis_ctx,
            ],
            bootstrap=Bootstrap(SERVICES, open_, workers),
            readiness=runtime.readiness,
            workers=runtime.with_self_report(lambda: ()),
            routes=add_routes,
            drain_timeout_s=settings.shutdown_timeout_s,
            middlewares=[reload_auth(tokens)],
        )
    )
