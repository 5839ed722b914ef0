"""The composition root: the one place alert-engine is wired together (pure wiring:
``bootstrap.py`` makes what needs the open resources)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from alert_engine.api import MAX_BODY, v1, v2
from alert_engine.api.auth import ApiTokens, auth_middleware
from alert_engine.api.errors import error_bodies
from alert_engine.api.guard import parameter_guard
from alert_engine.api.status import ServerStatus, build_info
from alert_engine.bootstrap import SERVICE, SERVICES, Loaded, Services, bootstrap, workers
from alert_engine.core.amconfig import EngineConfig, default_config, parse_config
from alert_engine.core.rules import Rule, parse_rules
from alert_engine.core.runbooks import link_runbooks
from alert_engine.settings import AlertEngineSettings
from opsmesh.clock import Clock
from opsmesh.reload import file_hash
from opsmesh.runtime import Runtime
from opsmesh.web import Bootstrap
from opsmesh.web.app import ServiceSpec, init_app

__all__ = ["SERVICE", "build"]

OpenServices = Callable[[Runtime, AlertEngineSettings, Loaded], Awaitable[Services]]


def load_rules(paths: tuple[str, ...], runbook_base_url: str) -> list[Rule]:
    rules: list[Rule] = []
    for path in paths:
        rules.extend(parse_rules(Path(path).read_text(), source=path))
    return link_runbooks(rules, runbook_base_url)


def load_config(settings: AlertEngineSettings) -> EngineConfig:
    if settings.config_file:
        path = Path(settings.config_file)
        return parse_config(path.read_text(), path.resolve().parent)
    config = default_config(
        settings.receiver,
        group_by=settings.group_by,
        group_wait_s=settings.group_wait_s,
        group_interval_s=settings.group_interval_s,
        repeat_interval_s=settings.repeat_interval_s,
    )
    return EngineConfig(
        config.route, config.receivers, resolve_timeout_s=settings.resolve_timeout_s
    )


def build(
    settings: AlertEngineSettings,
    clock: Clock | None = None,
    open_services: OpenServices = bootstrap,
) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    # Read once, as the process starts: /api/v2/status reports it as the uptime.
    server_status = ServerStatus(build_info(settings.am_compat_version), runtime.clock.now())
    loaded = Loaded(
        load_config(settings),
        load_rules(settings.rules_files, settings.runbook_base_url),
        file_hash(Path(settings.config_file)) if settings.config_file else None,
    )
    tokens = ApiTokens.load(
        settings.api_tokens.get_secret_value() if settings.api_tokens else None,
        settings.api_tokens_file,
    )

    def routes(app: web.Application) -> None:
        v2.AlertmanagerApi(server_status).register(app)
        v1.RestApi().register(app)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[
                runtime.kafka_ctx,
                runtime.postgres_ctx("alert_engine.migrations"),
                runtime.redis_ctx,
            ],
            bootstrap=Bootstrap(
                SERVICES,
                lambda: open_services(runtime, settings, loaded),
                lambda services: workers(services, runtime, settings),
            ),
            readiness=runtime.readiness,
            workers=runtime.with_self_report(lambda: ()),
            routes=routes,
            drain_timeout_s=settings.shutdown_timeout_s,
            middlewares=[
                error_bodies,
                auth_middleware(
                    tokens,
                    read_requires_token=settings.read_requires_token,
                    public_status=settings.public_status,
                ),
                parameter_guard,
            ],
            client_max_size=MAX_BODY,
        )
    )
