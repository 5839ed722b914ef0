"""A flush in explicit stages, as Alertmanager's notify pipeline runs its own:

plan → rate limit → produce → log → apply

``plan`` and ``apply`` read and change the in-memory state (``Held``), so the façade runs
them under the engine lock; the three between are I/O (Redis, Kafka, PostgreSQL), run
without it, under ``flushing`` only, so ingest never waits on a flush. Each stage is a
small unit over a Protocol, tested with the fakes of ``alert_engine.testing``.

The request is produced (acks=all) before the notification log is written: a crash in
between re-sends the same idempotency key, which the notifier delivers once. Nothing is
marked done before ``apply``: a stage that fails leaves the groups due, planned again
at the next tick (back-pressure, not loss).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from alert_engine.core.decision import LogEntry
from alert_engine.core.flush import FlushPlan, MuteReason
from alert_engine.pipeline.convert import notification
from alert_engine.pipeline.state.held import Held, LogKey
from alert_engine.pipeline.state.metrics import EngineMetrics
from opsmesh.kafka.producer import Outgoing


class Limiter(Protocol):
    async def allow_many(self, receivers: Sequence[str]) -> list[bool]: ...


class Publisher(Protocol):
    async def publish_many(self, items: Iterable[Outgoing]) -> None: ...


class FlushLog(Protocol):
    async def record(self, plans: Sequence[FlushPlan]) -> dict[LogKey, LogEntry]: ...


class SuppressedLog(Protocol):
    async def suppressed(self, rows: Sequence[tuple[str, str, str, int]]) -> None: ...


@dataclass(frozen=True, slots=True)
class Flush:
    """One flush as it goes through the stages."""

    at: float
    plans: list[FlushPlan]  # every due group's plan, sending or not
    sending: list[FlushPlan] = field(default_factory=list)  # allowed by the rate limits
    postponed: list[FlushPlan] = field(default_factory=list)  # refused by them
    logged: Mapping[LogKey, LogEntry] = field(default_factory=dict)  # as the log has them


def plan(held: Held, now: float, metrics: EngineMetrics) -> Flush:
    """Under the engine lock: every due group decided; muted ones counted, by why."""
    plans = held.engine.plan(now, held.entries)
    for one in plans:
        if one.reason is None and one.mute is not None:
            metrics.suppressed.labels(one.receiver, one.mute.value).inc()
    return Flush(now, plans)


class RateLimitStage:
    """One token per plan that sends, from its receiver's bucket (Redis)."""

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter

    async def __call__(self, flush: Flush) -> Flush:
        candidates = [p for p in flush.plans if p.reason is not None]
        allowed = await self._limiter.allow_many([p.receiver for p in candidates])
        pairs = list(zip(candidates, allowed, strict=True))
        return replace(
            flush,
            sending=[p for p, ok in pairs if ok],
            postponed=[p for p, ok in pairs if not ok],
        )


class ProduceStage:
    """The notification requests to ``opsmesh.notifications``, acknowledged (acks=all)."""

    def __init__(self, producer: Publisher, external_url: str) -> None:
        self._producer = producer
        self._external_url = external_url

    async def __call__(self, flush: Flush) -> Flush:
        await self._producer.publish_many(
            notification(p, flush.at, self._external_url) for p in flush.sending
        )
        return flush


class LogStage:
    """The notification log, only forwards: an entry another replica logged since this
    one read the log (a rebalance during this flush) wins, and is decided from next.
    Postponed flushes are recorded for ``/api/v1/suppressed``."""

    def __init__(self, log: FlushLog, suppressed: SuppressedLog, metrics: EngineMetrics) -> None:
        self._log = log
        self._suppressed = suppressed
        self._metrics = metrics

    async def __call__(self, flush: Flush) -> Flush:
        logged = await self._log.record(flush.sending)
        for p in flush.postponed:
            self._metrics.suppressed.labels(p.receiver, MuteReason.RATE_LIMITED.value).inc()
        await self._suppressed.suppressed(
            [
                (p.group.key, p.receiver, MuteReason.RATE_LIMITED.value, len(p.sent))
                for p in flush.postponed
            ]
        )
        return replace(flush, logged=logged)


class FlushStages:
    """The I/O stages in their order; ``plan`` before them and ``apply`` after them are
    the façade's, under the engine lock."""

    def __init__(
        self,
        *,
        limiter: Limiter,
        producer: Publisher,
        log: FlushLog,
        suppressed: SuppressedLog,
        metrics: EngineMetrics,
        external_url: str,
    ) -> None:
        self.rate_limit = RateLimitStage(limiter)
        self.produce = ProduceStage(producer, external_url)
        self.log = LogStage(log, suppressed, metrics)

    async def send(self, flush: Flush, produced: Callable[[Flush], None] | None = None) -> Flush:
        """``produced``: told once the requests are acknowledged, before the log."""
        sent = await self.produce(await self.rate_limit(flush))
        if produced is not None:
            produced(sent)
        return await self.log(sent)


def apply(held: Held, flush: Flush, metrics: EngineMetrics) -> int:
    """Under the engine lock: the outcome applied to the groups and the log entries held
    here; returns the requests sent. Postponed groups retry at their next interval."""
    for p in flush.sending:
        if p.entry is not None and p.reason is not None:
            key = (p.group.key, p.receiver)
            held.entries[key] = flush.logged.get(key, p.entry)
            metrics.notifications.labels(p.receiver, p.reason.value).inc()
    postponed = {id(p) for p in flush.postponed}
    for p in flush.plans:
        if id(p) in postponed:
            held.engine.postpone(p, flush.at)
        else:
            held.engine.done(p, flush.at)
    metrics.groups.set(len(held.engine.dispatcher.groups()))
    return len(flush.sending)
