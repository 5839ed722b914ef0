"""What the notifier is made of, and its workers.

``Configuration.load`` reads what the settings name (the receivers file, Alertmanager
templates, the networks webhooks may reach, the CA bundle) when the app is built, so a
file that does not load stops the service before it connects to anything. ``bootstrap``
runs once Kafka, PostgreSQL and Redis are open (``opsmesh.web.Bootstrap``): it opens the
HTTP session the channels send through, checks Alertmanager's templates (as Alertmanager
at start: template files that do not parse stop the service), builds the receiver
table, its reload and the deliver stage, and installs SIGHUP. ``Services.aclose`` undoes
that, after the workers drained and before the resources close.
"""

from __future__ import annotations

import asyncio
import ssl
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from notifier.amtemplate import AlertmanagerTemplates
from notifier.amtemplate.configured import Renderer, alertmanager_templates
from notifier.cdn import load_providers
from notifier.channels.factory import destinations, tls_context
from notifier.channels.safe_http import safe_session
from notifier.core.retry import RetryPolicy
from notifier.core.targets import TargetPolicy
from notifier.delivery.log import DeliveryLog
from notifier.delivery.refs import PgMessageRefs
from notifier.delivery.retention import purge_jobs
from notifier.pipeline.deliver_stage import DeliverStage
from notifier.pipeline.lanes import Destination, Sender
from notifier.pipeline.purge_stage import PurgeStage
from notifier.receivers.config import ReceiverConfig, Receivers
from notifier.receivers.loading import load_receivers
from notifier.receivers.reload import Loaded, ReceiversReload
from notifier.receivers.table import BuildDestinations, ReceiverTable
from notifier.settings import NotifierSettings
from opsmesh.events.cdn import CdnPurgeRequested
from opsmesh.events.notifications import NotificationRequested
from opsmesh.kafka.consumer import ConsumerConfig
from opsmesh.periodic import periodic_metrics
from opsmesh.ratelimit import FallbackRateLimiter, MemoryRateLimiter, RedisRateLimiter
from opsmesh.reload import ConfigReloader, SighupReload
from opsmesh.runtime import Runtime
from opsmesh.topics import CDN_PURGES, NOTIFICATIONS, Topic
from opsmesh.web import Worker
from opsmesh_client.cdn.provider import CdnProvider

# The destinations' buckets in Redis (GCRA in seconds; the buckets before them kept
# milliseconds under "notifier:rate:", which a rolling upgrade must not misread).
RATE_LIMIT_PREFIX = "notifier:gcra:"


@dataclass(frozen=True, slots=True)
class Configuration:
    """What the settings name, read and checked at build."""

    receivers: Receivers
    renderer: Renderer  # the Go renderer, made when first needed
    templates: AlertmanagerTemplates | None  # None: the receivers' templates are Jinja2
    policy: TargetPolicy
    tls: ssl.SSLContext
    cdn_providers: tuple[CdnProvider, ...] = ()  # what CDN purges go to (none: no purges)

    @classmethod
    def load(cls, settings: NotifierSettings) -> Configuration:
        receivers = load_receivers(
            settings.receivers_file,
            settings.default_webhook_url,
            settings.template_language_choice(),
        )
        renderer = Renderer(settings)
        return cls(
            receivers=receivers,
            renderer=renderer,
            templates=alertmanager_templates(settings, receivers, renderer),
            policy=TargetPolicy.from_strings(settings.allowed_networks),
            tls=tls_context(settings.ca_file),
            cdn_providers=load_providers(settings.cdn_providers_file),
        )


@dataclass(slots=True, kw_only=True)
class Services:
    settings: NotifierSettings
    runtime: Runtime
    table: ReceiverTable  # the receivers in use and their destinations
    reloader: ConfigReloader[Loaded] | None  # None: no receivers file to reload
    stage: DeliverStage
    purges: PurgeStage | None = None  # None: no CDN providers configured
    closing: AsyncExitStack = field(repr=False)  # what bootstrap opened

    async def aclose(self) -> None:
        await self.closing.aclose()


SERVICES = web.AppKey("notifier.services", Services)


async def bootstrap(
    runtime: Runtime, settings: NotifierSettings, configuration: Configuration
) -> Services:
    stack = AsyncExitStack()  # what opened, closed in reverse by Services.aclose
    try:
        session = safe_session(
            configuration.policy, timeout_s=settings.send_timeout_s, ssl_context=configuration.tls
        )
        stack.push_async_callback(session.close)
        stack.push_async_callback(configuration.renderer.close)
        if configuration.templates is not None:
            await configuration.templates.check()
        table = ReceiverTable(
            configuration.receivers,
            configuration.templates,
            _destination_builder(settings, runtime, configuration, session),
            runtime.clock,
        )
        reloader = _reloader(settings, runtime, table, configuration.renderer)
        on_sighup = SighupReload(reloader)
        loop = asyncio.get_running_loop()
        on_sighup.install(loop)
        stack.callback(on_sighup.remove, loop)
        return Services(
            settings=settings,
            runtime=runtime,
            table=table,
            reloader=reloader,
            stage=_deliver_stage(settings, runtime, table),
            purges=_purge_stage(settings, runtime, configuration.cdn_providers),
            closing=stack,
        )
    except BaseException:
        await stack.aclose()  # a step failed: close what the earlier ones opened
        raise


def _destination_builder(
    settings: NotifierSettings,
    runtime: Runtime,
    configuration: Configuration,
    session: aiohttp.ClientSession,
) -> BuildDestinations:
    refs = PgMessageRefs(runtime.pool)

    def build(
        receiver: ReceiverConfig, templates: AlertmanagerTemplates | None, generation: int
    ) -> list[Destination]:
        return destinations(
            receiver,
            session=session,
            policy=configuration.policy,
            clock=runtime.clock,
            refs=refs,
            timeout_s=settings.send_timeout_s,
            tls=configuration.tls,
            concurrency=settings.lane_concurrency,
            slack_rate_per_s=settings.slack_rate_per_s,
            templates=templates,
            generation=generation,
        )

    return build


def _reloader(
    settings: NotifierSettings, runtime: Runtime, table: ReceiverTable, renderer: Renderer
) -> ConfigReloader[Loaded] | None:
    """What reloads the receivers file; None without one."""
    if not settings.receivers_file:
        return None
    reload = ReceiversReload(
        table,
        default_webhook_url=settings.default_webhook_url,
        language=settings.template_language_choice(),
        renderer=renderer,
    )
    path = Path(settings.receivers_file)
    return reload.reloader(path, clock=runtime.clock, registry=runtime.registry)


def _deliver_stage(
    settings: NotifierSettings, runtime: Runtime, table: ReceiverTable
) -> DeliverStage:
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
    return DeliverStage(
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


def _purge_stage(
    settings: NotifierSettings, runtime: Runtime, providers: tuple[CdnProvider, ...]
) -> PurgeStage | None:
    if not providers:
        return None
    return PurgeStage(
        providers={p.name: p for p in providers},
        delivery_log=DeliveryLog(
            runtime.pool, runtime.redis, claim_ttl_s=settings.retry_deadline_s + 60
        ),
        producer=runtime.producer,
        dead_letters=runtime.dead_letters,
        clock=runtime.clock,
        registry=runtime.registry,
        instance=runtime.instance,
        retry=RetryPolicy(
            settings.retry_initial_s, settings.retry_max_s, settings.retry_deadline_s
        ),
        breaker_failures=settings.breaker_failures,
        breaker_open_s=settings.breaker_open_s,
        concurrency=settings.cdn_concurrency,
        drain_wait_s=settings.shutdown_timeout_s * 0.6,
    )


def purge_topic(settings: NotifierSettings) -> Topic:
    if settings.cdn_purges_topic == CDN_PURGES.name:
        return CDN_PURGES
    return Topic(settings.cdn_purges_topic, CDN_PURGES.partitions, CDN_PURGES.key)


def workers(services: Services) -> list[tuple[str, Worker]]:
    """The consumer of notification requests, the lanes, the retention purge, and the
    receivers file watch, the CDN purge consumer and the daily summary when configured."""
    settings, runtime = services.settings, services.runtime
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
        ("deliver", runtime.consumer(config, NotificationRequested, services.stage)),
        ("lanes", services.stage.run),
        ("retention", purger.run),
    ]
    if services.purges is not None:
        purges = ConsumerConfig(
            group_id=settings.cdn_consumer_group, topics=(purge_topic(settings),)
        )
        out.append(("cdn-purges", runtime.consumer(purges, CdnPurgeRequested, services.purges)))
        out.append(("cdn-purge-log", services.purges.run))
    if services.reloader is not None and settings.config_check_s > 0:
        out.append(
            (
                "config-watch",
                services.reloader.watcher(
                    settings.config_check_s, periodic_metrics(runtime.registry)
                ),
            )
        )
    if settings.summary_recipients:
        from notifier.summary.job import summary_worker  # noqa: PLC0415 - optional

        out.append(("summary", summary_worker(settings, runtime)))
    return out
