"""The composition root: the one place alert-engine is wired together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from alert_engine.api import v1, v2
from alert_engine.api.auth import ApiTokens, auth_middleware
from alert_engine.api.errors import error_bodies
from alert_engine.api.guard import parameter_guard
from alert_engine.api.status import ServerStatus, build_info
from alert_engine.core.amconfig import EngineConfig, default_config, parse_config
from alert_engine.core.active_alerts import ActiveAlerts, IngestLimits
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.rules import Rule, parse_rules
from alert_engine.core.silences import Silences
from alert_engine.pipeline.dispatch_stage import DispatchStage
from alert_engine.pipeline.evaluate_stage import EvaluateStage
from alert_engine.pipeline.flusher import run_flusher
from alert_engine.pipeline.reload import config_reloader
from alert_engine.pipeline.retention import purge_jobs
from alert_engine.pipeline.state import EngineState
from alert_engine.ratelimit import (
    DecidedBy,
    FallbackBuckets,
    Limits,
    MemoryTokenBuckets,
    RedisTokenBuckets,
    parse_limits,
)
from alert_engine.settings import AlertEngineSettings
from alert_engine.storage.alerts import AlertStore, SeriesStore
from alert_engine.storage.active_alerts import ActiveAlertStore
from alert_engine.storage.notification_log import NotificationLog
from alert_engine.storage.rule_groups import RuleGroupStore
from opsmesh.clock import Clock
from opsmesh.db.retention import days
from opsmesh.events.alerts import AlertsRouted
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.kafka.producer import EventProducer
from opsmesh.periodic import periodic_metrics
from opsmesh.reload import ConfigReloader, SighupReload
from opsmesh.runtime import Runtime
from opsmesh.topics import ALERT_GROUPS, GROUP_ALERT_DISPATCH, GROUP_ALERT_ENGINE, SIGNALS
from opsmesh.web.app import ServiceSpec, Worker, init_app
from opsmesh.web.reload import ReloadApi

SERVICE = "alert-engine"
# Alertmanager accepts large alert batches; bound them all the same.
MAX_BODY = 8 * 1024 * 1024


def load_rules(paths: tuple[str, ...]) -> list[Rule]:
    rules: list[Rule] = []
    for path in paths:
        rules.extend(parse_rules(Path(path).read_text(), source=path))
    return rules


def load_config(settings: AlertEngineSettings) -> EngineConfig:
    if settings.config_file:
        path = Path(settings.config_file)
        return parse_config(path.read_text(), path.resolve().parent)
    return default_config(
        settings.receiver,
        group_by=settings.group_by,
        group_wait_s=settings.group_wait_s,
        group_interval_s=settings.group_interval_s,
        repeat_interval_s=settings.repeat_interval_s,
    )


def make_reloader(
    settings: AlertEngineSettings, state: Callable[[], EngineState], runtime: Runtime
) -> ConfigReloader[EngineConfig] | None:
    if not settings.config_file:
        return None
    return config_reloader(
        Path(settings.config_file), state, clock=runtime.clock, registry=runtime.registry
    )


def rate_limiter(
    redis: aioredis.Redis,
    limits: Limits,
    settings: AlertEngineSettings,
    clock: Clock,
    registry: CollectorRegistry,
) -> FallbackBuckets:
    """Token buckets in Redis, shared by the replicas; in process while Redis fails."""
    fallbacks = Counter(
        "alert_engine_rate_limit_fallback",
        "Rate-limit decisions made in process because Redis did not answer",
        registry=registry,
    )
    in_process = Gauge(
        "alert_engine_rate_limit_in_process",
        "1 while rate limits are decided in process (Redis failed), 0 while on Redis",
        registry=registry,
    )
    return FallbackBuckets(
        RedisTokenBuckets(redis, limits),
        MemoryTokenBuckets(limits),
        limits,
        timeout_s=settings.rate_limit_timeout_s,
        retry_after_s=settings.rate_limit_retry_s,
        monotonic=clock.monotonic,
        on_fallback=fallbacks.inc,
        on_switch=lambda by: in_process.set(1 if by is DecidedBy.IN_PROCESS else 0),
    )


def build(settings: AlertEngineSettings, clock: Clock | None = None) -> web.Application:
    runtime = Runtime(service=SERVICE, settings=settings, clock=clock)
    # Read once, as the process starts: /api/v2/status reports it as the uptime.
    server_status = ServerStatus(build_info(settings.am_compat_version), runtime.clock.now())
    config = load_config(settings)
    if not settings.config_file:
        config = EngineConfig(
            config.route, config.receivers, resolve_timeout_s=settings.resolve_timeout_s
        )
    file_rules = load_rules(settings.rules_files)
    evaluator = Evaluator(file_rules, forget_after_s=days(settings.absence_forget_after_days))
    engine = Engine(config, ActiveAlerts(IngestLimits(settings.alerts_per_alertname)), Silences())
    tokens = ApiTokens.load(
        settings.api_tokens.get_secret_value() if settings.api_tokens else None,
        settings.api_tokens_file,
    )
    limits = parse_limits(
        settings.receiver_rate_per_minute, settings.receiver_burst, settings.receiver_limits
    )
    holder: dict[str, EngineState] = {}

    def state() -> EngineState:
        return holder["state"]

    reloader = make_reloader(settings, state, runtime)
    on_sighup = SighupReload(reloader)

    async def state_ctx(_: web.Application) -> AsyncIterator[None]:
        # POSTs wait on the routing records' acks: no linger on that producer.
        routing = EventProducer(
            runtime.connection, source=f"/opsmesh/{SERVICE}", clock=runtime.clock, linger_ms=0
        )
        await routing.start()
        limiter = rate_limiter(runtime.redis, limits, settings, runtime.clock, runtime.registry)
        holder["state"] = EngineState(
            engine=engine,
            evaluator=evaluator,
            rule_store=AlertStore(runtime.pool),
            series_store=SeriesStore(runtime.pool),
            book_store=ActiveAlertStore(runtime.pool),
            notification_log=NotificationLog(runtime.pool),
            rule_groups=RuleGroupStore(runtime.pool),
            file_rules=file_rules,
            producer=runtime.producer,
            routing_producer=routing,
            limiter=limiter,
            clock=runtime.clock,
            registry=runtime.registry,
            external_url=settings.external_url,
        )
        loop = asyncio.get_running_loop()
        try:
            await holder["state"].restore()
            on_sighup.install(loop)
            yield
        finally:
            on_sighup.remove(loop)
            await routing.stop()

    def workers() -> list[tuple[str, Worker]]:
        signals = ConsumerConfig(group_id=GROUP_ALERT_ENGINE, topics=(SIGNALS,))
        groups = ConsumerConfig(group_id=GROUP_ALERT_DISPATCH, topics=(ALERT_GROUPS,))

        async def flusher(stop: asyncio.Event) -> None:
            await run_flusher(
                state(),
                stop,
                tick_s=settings.flush_tick_s,
                sync_every_s=settings.sync_every_s,
                maintain_every_s=settings.maintenance_every_s,
                retention_days=settings.retention_days,
            )

        purger = runtime.purger(
            purge_jobs(
                runtime.pool,
                state,
                retention_days=settings.retention_days,
                notification_log_retention_days=settings.notification_log_retention_days,
                absence_forget_after_days=settings.absence_forget_after_days,
            )
        )
        workers: list[tuple[str, Worker]] = [
            ("evaluate", runtime.consumer(signals, SignalObserved, EvaluateStage(state()))),
            ("flush", flusher),  # with no groups owned it only re-reads shared state
            ("retention", purger.run),
        ]
        if reloader is not None and settings.config_check_s > 0:
            workers.append(
                (
                    "config-watch",
                    reloader.watcher(settings.config_check_s, periodic_metrics(runtime.registry)),
                )
            )
        if settings.owns_groups:
            workers.append(
                ("dispatch", runtime.consumer(groups, AlertsRouted, DispatchStage(state())))
            )
        return workers

    def routes(app: web.Application) -> None:
        v2.AlertmanagerApi(state, server_status).register(app)
        v1.RestApi(state).register(app)
        ReloadApi(
            reloader,
            no_file="no configuration file to reload (ALERT_ENGINE_CONFIG_FILE is not set)",
        ).register(app)

    return init_app(
        ServiceSpec(
            name=SERVICE,
            registry=runtime.registry,
            resources=[
                runtime.kafka_ctx,
                runtime.postgres_ctx("alert_engine.migrations"),
                runtime.redis_ctx,
                state_ctx,
            ],
            readiness=runtime.readiness,
            workers=runtime.with_self_report(workers),
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
