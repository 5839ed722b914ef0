"""Storm protection inside the engine: a storm of groups beyond a receiver's bucket,
flushed by ``EngineState`` over real PostgreSQL and a real Redis, with the rate limiter
the service builds (``app.rate_limiter``). Flushes the bucket refuses are postponed to
the group's next interval and sent once it has refilled: every group is notified
exactly once, none is lost, and two replicas share the one bucket. With Redis gone mid
storm (stopped, or paused so it never answers) the replica decides with its own
in-process buckets, says so (gauge, counter), and is back on Redis once it returns.

Time is simulated (``FakeClock``): the buckets run on the engine's clock, so each flush
instant is chosen, and the retry after a Redis failure runs on the same clock. Kafka is
a fake as in ``test_failover.py``: every requested notification lands in one list, as
the notifier would see them. The root route matches only this test's alerts, so rows
other tests left in the shared PostgreSQL form no group here."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from alert_engine.bootstrap import RATE_LIMIT_PREFIX, rate_limiter
from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import EngineConfig, default_config
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.matchers import parse_matcher
from alert_engine.core.silences import Silences
from alert_engine.pipeline.state import EngineState, Stores
from alert_engine.receiver_limits import Limits, ReceiverLimiter, parse_limits
from alert_engine.settings import AlertEngineSettings
from opsmesh.events.alerts import AlertsRouted
from opsmesh.events.notifications import NotificationRequested, NotifyReason
from opsmesh.kafka.codec import encode
from opsmesh.kafka.producer import Outgoing
from opsmesh.ratelimit import RedisRateLimiter
from opsmesh.topics import ALERT_GROUPS, partition_for
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.redis import RedisServer
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration

WAIT_S, INTERVAL_S = 30.0, 60.0
BURST = 4  # and 4 per minute: one group interval refills the bucket exactly
EVERY_PARTITION = set(range(ALERT_GROUPS.partitions))


# -- the replicas' surroundings ---------------------------------------------------------


@dataclass
class Partitions:
    """``opsmesh.alert-groups`` as the tests drive it: records wait until consumed."""

    records: dict[int, list[Outgoing]] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)

    async def enqueue(self, items: Iterable[Outgoing]) -> list[asyncio.Future[Any]]:
        out = []
        for item in items:
            assert item.partition is not None
            self.records.setdefault(item.partition, []).append(item)
            acked: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            acked.set_result(None)
            out.append(acked)
        return out

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        await self.enqueue(items)

    async def consume(self, state: EngineState, partitions: Iterable[int]) -> None:
        """What ``DispatchStage.handle`` does with the uncommitted records, then commit."""
        for partition in partitions:
            start = self.committed.get(partition, 0)
            pending = self.records.get(partition, [])[start:]
            batches = [r.event for r in pending if isinstance(r.event, AlertsRouted)]
            if batches:
                await state.routed([encode(b) for b in batches], batches)
            self.committed[partition] = start + len(pending)


@dataclass
class Notifier:
    """Every notification request of every replica, in order."""

    requests: list[NotificationRequested] = field(default_factory=list)

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        self.requests.extend(i.event for i in items if isinstance(i.event, NotificationRequested))

    def per_group(self) -> dict[str, list[tuple[NotifyReason, str]]]:
        out: dict[str, list[tuple[NotifyReason, str]]] = {}
        for r in self.requests:
            out.setdefault(r.group_key, []).append((r.reason, r.idempotency_key))
        return out


@dataclass
class Storm:
    """One test's receiver, limited to ``BURST`` per minute with a burst of ``BURST``."""

    label: str
    receiver: str
    config: EngineConfig
    settings: AlertEngineSettings
    clock: FakeClock
    kafka: Partitions = field(default_factory=Partitions)
    notifier: Notifier = field(default_factory=Notifier)

    @property
    def limits(self) -> Limits:
        s = self.settings
        return parse_limits(s.receiver_rate_per_minute, s.receiver_burst, s.receiver_limits)

    def other_replica(self, redis: aioredis.Redis) -> ReceiverLimiter:
        """Another replica's view of the Redis buckets (no fallback: Redis must answer)."""
        return ReceiverLimiter(
            RedisRateLimiter(redis, RATE_LIMIT_PREFIX, clock=self.clock.now), self.limits
        )

    def alert(self, name: str, *, resolved: bool = False) -> StoredAlert:
        now = self.clock.now()
        return StoredAlert(
            fingerprint=f"{self.label}-{name}",
            labels={"alertname": name, "storm": self.label},
            annotations={},
            starts_at=now,
            ends_at=now - 1 if resolved else None,
            updated_at=now,
        )

    def group_key(self, name: str) -> str:
        return self.config.route.group_key({"alertname": name, "storm": self.label})

    def replica(
        self, pool: AsyncConnectionPool, redis: aioredis.Redis
    ) -> tuple[EngineState, CollectorRegistry]:
        registry = CollectorRegistry()
        state = EngineState(
            engine=Engine(self.config, ActiveAlerts(), Silences()),
            evaluator=Evaluator([]),
            stores=Stores.over(pool),
            producer=self.notifier,  # type: ignore[arg-type]
            routing_producer=self.kafka,  # type: ignore[arg-type]
            limiter=rate_limiter(redis, self.limits, self.settings, self.clock, registry),
            clock=self.clock,
            registry=registry,
            external_url="http://engine",
        )
        state.restored.set()
        return state, registry


def storm(start: float, **settings: Any) -> Storm:
    label = uuid.uuid4().hex[:12]
    receiver = f"storm-{label}"
    config = default_config(
        receiver=receiver,
        group_by=("alertname",),
        group_wait_s=WAIT_S,
        group_interval_s=INTERVAL_S,
        matchers=(parse_matcher(f'storm="{label}"'),),
    )
    engine_settings = AlertEngineSettings(
        ALERT_ENGINE_RECEIVER_LIMITS=f"{receiver}={BURST}/{BURST}", **settings
    )
    return Storm(label, receiver, config, engine_settings, FakeClock(start))


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=4, open=False) as p:
        yield p


async def _forget(pool: AsyncConnectionPool, storm: Storm) -> None:
    """The storm's alerts leave the shared book (stamped in 2030, they would stay firing
    for the real-clock engines of the end-to-end tests)."""
    async with pool.connection() as conn:
        await conn.execute(
            "DELETE FROM alert_engine.stored_alerts WHERE labels ->> 'storm' = %s", (storm.label,)
        )


async def _suppressed(pool: AsyncConnectionPool, storm: Storm) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM alert_engine.suppressed_notifications"
            " WHERE receiver = %s AND reason = 'rate_limited'",
            (storm.receiver,),
        )
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _logged(pool: AsyncConnectionPool, storm: Storm) -> dict[str, int]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT group_key, sequence FROM alert_engine.notification_log WHERE receiver = %s",
            (storm.receiver,),
        )
        return {str(key): int(sequence) for key, sequence in await cursor.fetchall()}


def _metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _assert_each_notified_once(storm: Storm, names: list[str], *reasons: NotifyReason) -> None:
    """Every group told each state once, in order, each with a key of its own."""
    reasons = reasons or (NotifyReason.FIRST_NOTIFICATION,)
    sent = storm.notifier.per_group()
    assert set(sent) == {storm.group_key(n) for n in names}, "none lost, no stranger"
    for key, requests in sent.items():
        assert [reason for reason, _ in requests] == list(reasons), key
    keys = {k for r in sent.values() for _, k in r}
    assert len(keys) == len(names) * len(reasons), "one key per notification"


def _split(s: Storm, prefix: str, per_side: int = 6) -> tuple[list[str], set[int], set[int]]:
    """Alert names whose groups land half on even partitions (replica A), half on odd."""
    owners: dict[int, list[str]] = {0: [], 1: []}
    i = 0
    while min(len(v) for v in owners.values()) < per_side:
        name = f"{prefix}{i:03d}"
        i += 1
        side = partition_for(s.group_key(name), ALERT_GROUPS.partitions) % 2
        if len(owners[side]) < per_side:
            owners[side].append(name)
    evens = {p for p in EVERY_PARTITION if p % 2 == 0}
    return owners[0] + owners[1], evens, EVERY_PARTITION - evens


# -- one replica, Redis up ---------------------------------------------------------------


async def test_a_storm_beyond_the_bucket_is_postponed_then_notified_once_each(
    pool: AsyncConnectionPool, infra: Endpoints
) -> None:
    s = storm(1_900_200_000.0)
    names = [f"Storm{i:02d}" for i in range(10)]
    redis = aioredis.Redis.from_url(infra.redis_url)
    state, registry = s.replica(pool, redis)
    try:
        await state.assigned(EVERY_PARTITION)
        await state.post_alerts([s.alert(n) for n in names])
        await s.kafka.consume(state, EVERY_PARTITION)

        s.clock.advance(WAIT_S)
        assert await state.flush() == BURST, "the burst, the rest postponed"
        s.clock.advance(INTERVAL_S / 2)
        assert await state.flush() == 0, "postponed to the next interval, not sooner"
        s.clock.advance(INTERVAL_S / 2)
        assert await state.flush() == BURST, "an interval refilled the bucket"
        s.clock.advance(INTERVAL_S)
        assert await state.flush() == 2
        # The bucket is Redis': another replica finds it as the flushes left it (two of
        # the four slots this interval refilled), where a bucket of its own would be full.
        other = s.other_replica(redis)
        assert await other.allow_many([s.receiver] * 3) == [True, True, False]
        s.clock.advance(INTERVAL_S)
        assert await state.flush() == 0, "nothing new: nothing sent again"

        _assert_each_notified_once(s, names)
        assert await _logged(pool, s) == {s.group_key(n): 1 for n in names}
        # Refused: 6 at the first flush, 2 at the second.
        assert await _suppressed(pool, s) == 8
        suppressed = "alert_engine_notifications_suppressed_total"
        assert _metric(registry, suppressed, receiver=s.receiver, reason="rate_limited") == 8
        assert _metric(registry, "alert_engine_rate_limit_fallback_total") == 0
        assert _metric(registry, "alert_engine_rate_limit_in_process") == 0

        # Then all of them resolve at once: a storm of "all resolved". A postponed flush
        # must keep its resolved alerts (a group treated as flushed would drop them,
        # empty itself and be forgotten, its resolve never sent).
        await state.post_alerts([s.alert(n, resolved=True) for n in names])
        await s.kafka.consume(state, EVERY_PARTITION)
        sent = []
        for _ in range(4):
            s.clock.advance(INTERVAL_S)
            sent.append(await state.flush())
        assert sent == [BURST, BURST, 2, 0]
        _assert_each_notified_once(
            s, names, NotifyReason.FIRST_NOTIFICATION, NotifyReason.ALL_RESOLVED
        )
        assert await _logged(pool, s) == {s.group_key(n): 2 for n in names}
        assert state.engine.dispatcher.groups() == [], "every group told, then forgotten"
        assert await _suppressed(pool, s) == 8 + 8
    finally:
        await _forget(pool, s)
        await redis.aclose()


# -- two replicas, one bucket ------------------------------------------------------------


async def test_two_replicas_flushing_at_once_share_the_bucket(
    pool: AsyncConnectionPool, infra: Endpoints
) -> None:
    s = storm(1_900_300_000.0)
    names, a_parts, b_parts = _split(s, "Shared")
    clients = [aioredis.Redis.from_url(infra.redis_url) for _ in range(2)]
    (a, _), (b, _) = (s.replica(pool, c) for c in clients)
    try:
        await a.assigned(a_parts)
        await b.assigned(b_parts)
        await a.post_alerts([s.alert(n) for n in names])
        await s.kafka.consume(a, a_parts)
        await s.kafka.consume(b, b_parts)

        sent: list[int] = []
        for _ in range(4):
            s.clock.advance(WAIT_S if not sent else INTERVAL_S)
            sent.append(sum(await asyncio.gather(a.flush(), b.flush())))
        # Each replica alone would send 4 a flush (8 together) with buckets of its own.
        assert sent == [BURST, BURST, BURST, 0]
        _assert_each_notified_once(s, names)
    finally:
        await _forget(pool, s)
        for c in clients:
            await c.aclose()


# -- Redis gone mid-storm ----------------------------------------------------------------


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this module's own, to stop and pause without touching the session's."""
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-rl-"))
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        if server.running and server._process is not None:
            with contextlib.suppress(ProcessLookupError):
                server._process.send_signal(signal.SIGCONT)  # a failed test may leave it paused
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class Outage:
    """Redis stopped (connections refused) or paused (SIGSTOP: no answer at all)."""

    def __init__(self, server: RedisServer, kind: str) -> None:
        self.server = server
        self.kind = kind

    def begin(self) -> None:
        if self.kind == "stopped":
            self.server.stop()
        else:
            assert self.server._process is not None
            self.server._process.send_signal(signal.SIGSTOP)

    def end(self) -> None:
        if self.kind == "stopped":
            if not self.server.running:
                self.server.start()
        else:
            assert self.server._process is not None
            self.server._process.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("kind", ["stopped", "paused"])
async def test_redis_gone_mid_storm_falls_back_in_process_and_comes_back(
    pool: AsyncConnectionPool, own_redis: RedisServer, kind: str
) -> None:
    s = storm(
        1_900_400_000.0 + (0 if kind == "stopped" else 100_000),
        ALERT_ENGINE_RATE_LIMIT_TIMEOUT_S=0.5,
        ALERT_ENGINE_RATE_LIMIT_RETRY_S=INTERVAL_S / 2,
    )
    names = [f"Outage{i:02d}" for i in range(16)]
    redis = aioredis.Redis.from_url(own_redis.url, socket_connect_timeout=2)
    state, registry = s.replica(pool, redis)
    outage = Outage(own_redis, kind)

    def fallbacks() -> float:
        return _metric(registry, "alert_engine_rate_limit_fallback_total")

    def in_process() -> float:
        return _metric(registry, "alert_engine_rate_limit_in_process")

    try:
        await state.assigned(EVERY_PARTITION)
        await state.post_alerts([s.alert(n) for n in names])
        await s.kafka.consume(state, EVERY_PARTITION)

        s.clock.advance(WAIT_S)
        assert await state.flush() == BURST  # on Redis: 12 postponed
        assert (fallbacks(), in_process()) == (0, 0)

        outage.begin()
        s.clock.advance(INTERVAL_S)
        # The in-process bucket never saw the first flush's takes: it starts full, so
        # the limit holds per replica while Redis is gone (docs/services.md).
        assert await state.flush() == BURST
        assert (fallbacks(), in_process()) == (12, 1), "12 decided in process"
        s.clock.advance(INTERVAL_S)
        # Past the retry time Redis is asked again, still fails, and the in-process
        # bucket (refilled by the interval) decides again.
        assert await state.flush() == BURST
        assert (fallbacks(), in_process()) == (20, 1)

        outage.end()
        s.clock.advance(INTERVAL_S)
        assert await state.flush() == BURST, "the last four, on Redis again"
        assert (fallbacks(), in_process()) == (20, 0), "back on Redis, and it says so"
        # Decided on Redis: another replica finds the bucket as that flush left it.
        other = s.other_replica(redis)
        assert await other.allow_many([s.receiver]) == [False]
        s.clock.advance(INTERVAL_S)
        assert await state.flush() == 0

        _assert_each_notified_once(s, names)
        assert await _logged(pool, s) == {s.group_key(n): 1 for n in names}
    finally:
        outage.end()
        await _forget(pool, s)
        await redis.aclose()


async def test_limits_without_redis_are_per_replica_not_lost(
    pool: AsyncConnectionPool, own_redis: RedisServer
) -> None:
    """Two replicas with Redis stopped each apply the limit on their own (the documented
    cost of never holding notifications up on Redis): twice the burst per interval
    between them, and still every group exactly once."""
    s = storm(1_900_600_000.0, ALERT_ENGINE_RATE_LIMIT_TIMEOUT_S=0.5)
    names, a_parts, b_parts = _split(s, "Split")
    clients = [aioredis.Redis.from_url(own_redis.url, socket_connect_timeout=2) for _ in range(2)]
    (a, _), (b, _) = (s.replica(pool, c) for c in clients)
    outage = Outage(own_redis, "stopped")
    try:
        await a.assigned(a_parts)
        await b.assigned(b_parts)
        await a.post_alerts([s.alert(n) for n in names])
        await s.kafka.consume(a, a_parts)
        await s.kafka.consume(b, b_parts)
        outage.begin()
        s.clock.advance(WAIT_S)
        assert sum(await asyncio.gather(a.flush(), b.flush())) == 2 * BURST
        s.clock.advance(INTERVAL_S)
        assert sum(await asyncio.gather(a.flush(), b.flush())) == 12 - 2 * BURST
        _assert_each_notified_once(s, names)
    finally:
        outage.end()
        await _forget(pool, s)
        for c in clients:
            await c.aclose()
