"""The parts every service wires the same way: producer, PostgreSQL, Redis, a consumer.

A composition root creates one ``Runtime`` and hands its ``*_ctx`` methods to
``init_app`` as cleanup contexts, so resources open in order at start and close in
reverse on shutdown. Attributes are set when their context has opened.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from opsmesh.clock import Clock, SystemClock
from opsmesh.db.migrations import apply_migrations
from opsmesh.db.pool import open_pool, ping
from opsmesh.db.retention import PurgeJob, Purger, RetentionMetrics
from opsmesh.events.base import Event
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.connection import connection_options
from opsmesh.kafka.consumer import BatchConsumer, BatchHandler, ConsumerConfig, ConsumerMetrics
from opsmesh.kafka.dlq import DeadLetterPublisher
from opsmesh.kafka.producer import EventProducer
from opsmesh.logging import get_logger
from opsmesh.periodic import periodic_metrics
from opsmesh.selfreport import ConsumedGroup, KafkaLagReader, SelfReporter
from opsmesh.settings import CommonSettings
from opsmesh.shutdown import finish_within
from opsmesh.web.app import ReadinessCheck, Worker

E = TypeVar("E", bound=Event)
log = get_logger(__name__)

# Bounds on closing resources at shutdown, after the workers' drain (see opsmesh.shutdown).
POOL_CLOSE_S = 1.0
REDIS_CLOSE_S = 0.5


class Runtime:
    def __init__(
        self,
        *,
        service: str,
        settings: CommonSettings,
        registry: CollectorRegistry | None = None,
        clock: Clock | None = None,
        partition_cache: int = 65_536,
    ) -> None:
        self.service = service
        self._partition_cache = partition_cache  # keys whose partition the producer keeps
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.clock = clock or SystemClock()
        self.instance = settings.instance_id or service
        self.connection = connection_options(settings)
        self._producer: EventProducer | None = None
        self._pool: AsyncConnectionPool | None = None
        self._redis: aioredis.Redis | None = None
        self._dead_letters: DeadLetterPublisher | None = None
        self.consumers: list[BatchConsumer[Any]] = []
        # What the self-report reads the lag of, by group.
        self._consumed: dict[str, ConsumedGroup] = {}
        self._consumer_metrics: ConsumerMetrics | None = None
        self._retention_metrics: RetentionMetrics | None = None

    # -- resources (cleanup contexts) ------------------------------------------------

    async def kafka_ctx(self, _: web.Application) -> AsyncIterator[None]:
        await ensure_topics(self.connection)
        producer = EventProducer(
            self.connection,
            source=f"/opsmesh/{self.service}",
            clock=self.clock,
            partition_cache=self._partition_cache,
        )
        await producer.start()
        self._producer = producer
        self._dead_letters = DeadLetterPublisher(
            producer, service=self.service, clock=self.clock, registry=self.registry
        )
        try:
            yield
        finally:
            await producer.stop()  # bounded by the producer itself

    def postgres_ctx(self, migrations_package: str | None) -> Any:
        async def ctx(_: web.Application) -> AsyncIterator[None]:
            dsn = self.settings.pg_dsn.get_secret_value()
            if migrations_package is not None:
                applied = await apply_migrations(dsn, self.service, migrations_package)
                if applied:
                    log.info("migrations applied", versions=applied)
            self._pool = await open_pool(dsn, name=self.service)
            try:
                yield
            finally:
                await finish_within(self._pool.close(), POOL_CLOSE_S, "postgres pool close")

        return ctx

    async def redis_ctx(self, _: web.Application) -> AsyncIterator[None]:
        # A blocking pool: a burst of concurrent commands (the notifier delivers a whole
        # batch at once) waits for a free connection instead of failing the batch with
        # MaxConnectionsError, which the default pool raises past 100 connections.
        pool = aioredis.BlockingConnectionPool.from_url(
            self.settings.redis_url.get_secret_value(),
            max_connections=100,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        client = aioredis.Redis.from_pool(pool)
        await client.ping()
        self._redis = client
        try:
            yield
        finally:
            await finish_within(client.aclose(), REDIS_CLOSE_S, "redis close")

    # -- accessors -------------------------------------------------------------------

    @property
    def producer(self) -> EventProducer:
        if self._producer is None:
            raise RuntimeError("kafka_ctx has not opened yet")
        return self._producer

    @property
    def dead_letters(self) -> DeadLetterPublisher:
        if self._dead_letters is None:
            raise RuntimeError("kafka_ctx has not opened yet")
        return self._dead_letters

    @property
    def pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise RuntimeError("postgres_ctx has not opened yet")
        return self._pool

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("redis_ctx has not opened yet")
        return self._redis

    # -- readiness and workers --------------------------------------------------------

    def readiness(self) -> list[ReadinessCheck]:
        checks = []
        if self._producer is not None:
            checks.append(ReadinessCheck("kafka", self._producer.ping))
            for consumer in self.consumers:
                checks.append(ReadinessCheck(f"consumer:{consumer.group_id}", consumer.ready))
        if self._pool is not None:
            pool = self._pool
            checks.append(ReadinessCheck("postgres", lambda: ping(pool)))
        if self._redis is not None:
            client = self._redis

            async def redis_ping() -> None:
                await client.ping()

            checks.append(ReadinessCheck("redis", redis_ping))
        return checks

    def consumer(
        self, config: ConsumerConfig, event_type: type[E], handler: BatchHandler[E]
    ) -> Worker:
        """A background worker that consumes ``config.topics`` into ``handler``."""
        topics = tuple(t.name for t in config.topics)
        self._consumed[config.group_id] = ConsumedGroup(config.group_id, topics)

        async def work(stop: asyncio.Event) -> None:
            if self._consumer_metrics is None:
                self._consumer_metrics = ConsumerMetrics(self.registry)
            consumer = BatchConsumer(
                metrics=self._consumer_metrics,
                connection=self.connection,
                config=replace(
                    config,
                    stall_after_s=self.settings.consumer_stall_after_s,
                    give_up_after_s=self.settings.consumer_give_up_after_s,
                ),
                clock=self.clock,
                event_type=event_type,
                handler=handler,
                dead_letters=self.dead_letters,
                registry=self.registry,
                client_id=f"{self.instance}:{config.group_id}",
            )
            self.consumers.append(consumer)
            await consumer.run(stop)

        return work

    def with_self_report(
        self, workers: Callable[[], Sequence[tuple[str, Worker]]]
    ) -> Callable[[], list[tuple[str, Worker]]]:
        """``workers`` plus the self-report (for ``ServiceSpec.workers``)."""

        def all_workers() -> list[tuple[str, Worker]]:
            found = list(workers())
            report = self.self_report()
            if report is not None:
                found.append(("self-report", report))
            return found

        return all_workers

    def self_report(self) -> Worker | None:
        """The worker that reports this instance's dead letters and its groups' consumer
        lag as signals every ``OPSMESH_SELF_REPORT_S``; None when that is 0. Add it after
        the consumers, so their groups are known."""
        if self.settings.self_report_s <= 0:
            return None
        reporter = SelfReporter(
            service=self.service,
            instance=self.instance,
            dead_letters=lambda: self.dead_letters.records_total,
            groups=lambda: list(self._consumed.values()),
            lag=KafkaLagReader(self.connection),
            producer=lambda: self.producer,
            clock=self.clock,
            interval_s=self.settings.self_report_s,
            metrics=periodic_metrics(self.registry),
        )
        return reporter.run

    # -- retention --------------------------------------------------------------------

    @property
    def retention_metrics(self) -> RetentionMetrics:
        if self._retention_metrics is None:
            self._retention_metrics = RetentionMetrics(self.registry)
        return self._retention_metrics

    def purger(self, jobs: Sequence[PurgeJob]) -> Purger:
        """The retention worker over ``jobs`` (``OPSMESH_RETENTION_*`` settings); add its
        ``run`` to the workers."""
        return Purger(
            jobs,
            clock=self.clock,
            metrics=self.retention_metrics,
            interval_s=self.settings.retention_interval_s,
            batch_rows=self.settings.retention_batch_rows,
        )


def tune_gc() -> None:
    """Garbage-collector settings for batch consumers.

    A batch holds thousands of records alive while it is handled, and CPython's default
    gen-0 threshold (700 allocations) then runs collections over them many times per
    batch. Events are immutable and untracked (``gc=False``), so cycles are rare: collect
    less often, and move everything alive after start-up out of the collector's way.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
