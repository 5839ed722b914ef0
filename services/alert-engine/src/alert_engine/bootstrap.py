"""What alert-engine is made of once its resources are open (``opsmesh.web.Bootstrap``):
``Services``, kept under ``SERVICES``; ``bootstrap`` makes them, ``workers`` runs over
them. ``app.py`` wires this in; the API handlers read ``request.app[SERVICES]``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from alert_engine.core.active_alerts import ActiveAlerts, IngestLimits
from alert_engine.core.amconfig import EngineConfig
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.rules import Rule
from alert_engine.core.silences import Silences
from alert_engine.pipeline.dispatch_stage import DispatchStage
from alert_engine.pipeline.evaluate_stage import EvaluateStage
from alert_engine.pipeline.flusher import run_flusher
from alert_engine.pipeline.reload import config_reloader
from alert_engine.pipeline.retention import purge_jobs
from alert_engine.pipeline.state import EngineState, Stores
from alert_engine.receiver_limits import Limits, ReceiverLimiter, parse_limits
from alert_engine.settings import AlertEngineSettings
from opsmesh.clock import Clock
from opsmesh.db.retention import days
from opsmesh.events.alerts import AlertsRouted
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.kafka.producer import EventProducer
from opsmesh.periodic import periodic_metrics
from opsmesh.ratelimit import DecidedBy, FallbackRateLimiter, MemoryRateLimiter, RedisRateLimiter
from opsmesh.reload import ConfigReloader, SighupReload
from opsmesh.runtime import Runtime
from opsmesh.topics import ALERT_GROUPS, GROUP_ALERT_DISPATCH, GROUP_ALERT_ENGINE, SIGNALS
from opsmesh.web import Worker
from opsmesh.web.reload import ReloadApi

SERVICE = "alert-engine"
# The receivers' buckets in Redis (GCRA; the token buckets before them were hashes under
# "alert-engine:rl:", which a rolling upgrade must not read as this layout).
RATE_LIMIT_PREFIX = "alert-engine:gcra:"


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the configuration and rule files say, read by ``build`` before anything
    opens: a file that does not load stops the start before any connection."""

    config: EngineConfig
    rules: list[Rule]
    config_hash: str | None = None  # of the configuration file as read: what a reload compares


@dataclass(eq=False, slots=True)
class Services:
    state: EngineState
    reloader: ConfigReloader[EngineConfig] | None  # None: no configuration file
    reload: ReloadApi  # ``POST /-/reload`` over ``reloader``
    routing: EventProducer  # the routing records' producer (no linger: POSTs wait on it)
    sighup: SighupReload

    async def aclose(self) -> None:
        self.sighup.remove(asyncio.get_running_loop())
        await self.routing.stop()


SERVICES = web.AppKey("alert_engine.services", Services)


def rate_limiter(
    redis: aioredis.Redis,
    limits: Limits,
    settings: AlertEngineSettings,
    clock: Clock,
    registry: CollectorRegistry,
) -> ReceiverLimiter:
    """Buckets in Redis, shared by the replicas; in process while Redis fails. Both run
    on the engine's clock, as its flush timers do (so simulated time drives them too)."""
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
    buckets = FallbackRateLimiter(
        RedisRateLimiter(redis, RATE_LIMIT_PREFIX, clock=clock.now),
        MemoryRateLimiter(clock.now),
        timeout_s=settings.rate_limit_timeout_s,
        retry_after_s=settings.rate_limit_retry_s,
        monotonic=clock.monotonic,
        on_fallback=fallbacks.inc,
        on_switch=lambda by: in_process.set(1 if by is DecidedBy.IN_PROCESS else 0),
    )
    return ReceiverLimiter(buckets, limits)


async def bootstrap(runtime: Runtime, settings: AlertEngineSettings, loaded: Loaded) -> Services:
    """The engine state over the open resources, restored from PostgreSQL; the routing
    producer started and SIGHUP reloading installed (both undone by ``aclose``)."""
    limits = parse_limits(
        settings.receiver_rate_per_minute, settings.receiver_burst, settings.receiver_limits
    )
    routing = EventProducer(
        runtime.connection, source=f"/opsmesh/{SERVICE}", clock=runtime.clock, linger_ms=0
    )
    await routing.start()
    try:
        state = EngineState(
            engine=Engine(
                loaded.config,
                ActiveAlerts(IngestLimits(settings.alerts_per_alertname)),
                Silences(),
            ),
            evaluator=Evaluator(
                loaded.rules, forget_after_s=days(settings.absence_forget_after_days)
            ),
            file_rules=loaded.rules,
            stores=Stores.over(runtime.pool),
            producer=runtime.producer,
            routing_producer=routing,
            limiter=rate_limiter(runtime.redis, limits, settings, runtime.clock, runtime.registry),
            clock=runtime.clock,
            registry=runtime.registry,
            external_url=settings.external_url,
        )
        await state.restore()
    except BaseException:
        await routing.stop()
        raise
    reloader = None
    if settings.config_file:
        reloader = config_reloader(
            Path(settings.config_file),
            state,
            loaded_hash=loaded.config_hash,
            clock=runtime.clock,
            registry=runtime.registry,
        )
    sighup = SighupReload(reloader)
    sighup.install(asyncio.get_running_loop())
    reload = ReloadApi(
        reloader, no_file="no configuration file to reload (ALERT_ENGINE_CONFIG_FILE is not set)"
    )
    return Services(state, reloader, reload, routing, sighup)


def workers(
    services: Services, runtime: Runtime, settings: AlertEngineSettings
) -> list[tuple[str, Worker]]:
    state = services.state
    signals = ConsumerConfig(group_id=GROUP_ALERT_ENGINE, topics=(SIGNALS,))
    groups = ConsumerConfig(group_id=GROUP_ALERT_DISPATCH, topics=(ALERT_GROUPS,))

    async def flusher(stop: asyncio.Event) -> None:
        await run_flusher(
            state,
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
    found: list[tuple[str, Worker]] = [
        ("evaluate", runtime.consumer(signals, SignalObserved, EvaluateStage(state))),
        ("flush", flusher),  # with no groups owned it only re-reads shared state
        ("retention", purger.run),
    ]
    if services.reloader is not None and settings.config_check_s > 0:
        found.append(
            (
                "config-watch",
                services.reloader.watcher(
                    settings.config_check_s, periodic_metrics(runtime.registry)
                ),
            )
        )
    if settings.owns_groups:
        found.append(("dispatch", runtime.consumer(groups, AlertsRouted, DispatchStage(state))))
    return found
