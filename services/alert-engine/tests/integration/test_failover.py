"""Group ownership hand-overs over real PostgreSQL, with the replicas' steps driven one
by one in the orders that once notified a group twice (issue 18).

Kafka is a fake here (``Partitions``): what matters is which routed records each
replica has consumed, persisted and applied when it flushes, and the tests choose that.
Every notification any replica requests lands in one list, as the notifier would see
them; the notifier delivers a key once, so two requests with the same idempotency key
are one webhook and two with different keys are two."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import default_config
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.silences import Silences
from alert_engine.pipeline.state import EngineState, Stores
from alert_engine.receiver_limits import Limits, ReceiverLimiter
from opsmesh.events.alerts import AlertsRouted
from opsmesh.events.notifications import NotificationRequested, NotifyReason
from opsmesh.kafka.codec import encode
from opsmesh.kafka.producer import Outgoing
from opsmesh.ratelimit import MemoryRateLimiter
from opsmesh.topics import ALERT_GROUPS, partition_for
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration

WAIT_S, INTERVAL_S = 30.0, 60.0
FIRST, NEW, RESOLVED = (
    NotifyReason.FIRST_NOTIFICATION,
    NotifyReason.NEW_ALERTS,
    NotifyReason.ALL_RESOLVED,
)


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=4, open=False) as p:
        yield p


@dataclass
class Partitions:
    """``opsmesh.alert-groups``: the routed records of each partition, and the offset up
    to which the partition's consumer group has committed (consumed, persisted, applied)."""

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

    async def consume(self, state: EngineState, partition: int) -> int:
        """What ``DispatchStage.handle`` does with the uncommitted records, then commit."""
        start = self.committed.get(partition, 0)
        pending = self.records.get(partition, [])[start:]
        if pending:
            batches = [r.event for r in pending if isinstance(r.event, AlertsRouted)]
            await state.routed([encode(b) for b in batches], batches)
        self.committed[partition] = start + len(pending)
        return len(pending)


@dataclass
class Notifier:
    """Every notification request of every replica, in order; ``gate``, when set on a
    replica's producer, holds its requests (Kafka slow to acknowledge) until opened."""

    requests: list[NotificationRequested] = field(default_factory=list)

    def of(self, group_key: str) -> list[tuple[NotifyReason, str]]:
        return [(r.reason, r.idempotency_key) for r in self.requests if r.group_key == group_key]


@dataclass
class Requests:
    notifier: Notifier
    gate: asyncio.Event | None = None
    waiting: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        events = [i.event for i in items]
        if self.gate is not None and events:
            self.waiting.set()
            await self.gate.wait()
        self.notifier.requests.extend(e for e in events if isinstance(e, NotificationRequested))


def replica(
    pool: AsyncConnectionPool, clock: FakeClock, kafka: Partitions, requests: Requests
) -> EngineState:
    config = default_config(
        group_by=("alertname",), group_wait_s=WAIT_S, group_interval_s=INTERVAL_S
    )
    state = EngineState(
        engine=Engine(config, ActiveAlerts(), Silences()),
        evaluator=Evaluator([]),
        stores=Stores.over(pool),
        producer=requests,  # type: ignore[arg-type]
        routing_producer=kafka,  # type: ignore[arg-type]
        limiter=ReceiverLimiter(MemoryRateLimiter(clock.now), Limits()),
        clock=clock,
        registry=CollectorRegistry(),
        external_url="http://engine",
    )
    state.restored.set()
    return state


def alert(name: str, instance: str, clock: FakeClock, *, resolved: bool = False) -> StoredAlert:
    now = clock.now()
    return StoredAlert(
        fingerprint=f"{name}-{instance}",
        labels={"alertname": name, "instance": instance},
        annotations={},
        starts_at=now,
        ends_at=now - 1 if resolved else None,
        updated_at=now,
    )


async def logged(pool: AsyncConnectionPool, group_key: str) -> tuple[int, list[str], list[str]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT sequence, firing, resolved FROM alert_engine.notification_log"
            " WHERE group_key = %s",
            (group_key,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return row[0], sorted(row[1]), sorted(row[2])


def unique_group() -> tuple[str, str, int]:
    name = f"Failover{uuid.uuid4().hex[:12]}"
    key = f'{{}}:{{alertname="{name}"}}'
    return name, key, partition_for(key, ALERT_GROUPS.partitions)


async def test_a_resolve_routed_to_a_dead_owner_is_notified_once_from_durable_state(
    pool: AsyncConnectionPool,
) -> None:
    """The interleaving traced in issue 18: B answers a resolve for A's group and routes
    it; A is SIGKILLed; B takes the group over and flushes before it has consumed (so
    persisted) that record; B is SIGKILLed too; A restarts and takes the group back.
    Before the fix B built the group from its in-memory merge (resolved), notified and
    logged "all resolved"; A then read the firing row and that log entry and sent a
    second first notification with another key."""
    clock = FakeClock(1_900_000_000.0)
    kafka, notifier = Partitions(), Notifier()
    name, key, partition = unique_group()
    a = replica(pool, clock, kafka, Requests(notifier))
    b = replica(pool, clock, kafka, Requests(notifier))
    await a.assigned({partition})
    await b.assigned(set())

    await a.post_alerts([alert(name, "1", clock)])
    await kafka.consume(a, partition)
    clock.advance(WAIT_S)
    await a.flush()
    assert [reason for reason, _ in notifier.of(key)] == [FIRST]

    clock.advance(5)
    await b.post_alerts([alert(name, "1", clock, resolved=True)])  # B: not the owner
    assert not b.engine.dispatcher.groups(), "a non-owner only routes"
    # A is SIGKILLed before consuming the resolve; B takes its partitions over.
    await b.assigned({partition})
    clock.advance(INTERVAL_S)
    await b.flush()  # the row still says firing: nothing new to tell
    # B is SIGKILLed before consuming the resolve; A restarts and takes over again.
    restarted = replica(pool, clock, kafka, Requests(notifier))
    await restarted.restore()
    await restarted.assigned({partition})
    clock.advance(INTERVAL_S)
    await restarted.flush()
    assert [reason for reason, _ in notifier.of(key)] == [FIRST], (
        "nothing is notified before the resolve is durable"
    )

    assert await kafka.consume(restarted, partition) == 1
    clock.advance(INTERVAL_S)
    await restarted.flush()

    sent = notifier.of(key)
    assert [reason for reason, _ in sent] == [FIRST, RESOLVED]
    assert len({k for _, k in sent}) == 2
    assert await logged(pool, key) == (2, [], [f"{name}-1"])


async def test_a_flush_overtaken_by_a_rebalance_sends_the_same_key_and_never_logs_backwards(
    pool: AsyncConnectionPool,
) -> None:
    """A's flush is held between its requests and its log (Kafka slow to acknowledge)
    while the group moves to B: B decides the same flush from the same durable state,
    so with the same key (one webhook), then logs a later state. A's late log write must
    not take the log back, and A, should it own the group again, decides from B's entry."""
    clock = FakeClock(1_900_100_000.0)
    kafka, notifier = Partitions(), Notifier()
    name, key, partition = unique_group()
    gate = asyncio.Event()
    slow = Requests(notifier)
    a = replica(pool, clock, kafka, slow)
    b = replica(pool, clock, kafka, Requests(notifier))
    await a.assigned({partition})
    await b.assigned(set())

    await a.post_alerts([alert(name, "1", clock)])
    await kafka.consume(a, partition)
    clock.advance(WAIT_S)
    await a.flush()
    await a.post_alerts([alert(name, "2", clock)])
    await kafka.consume(a, partition)
    clock.advance(INTERVAL_S)
    slow.gate = gate
    flushing = asyncio.create_task(a.flush())  # new_alerts, held before the log
    await asyncio.wait_for(slow.waiting.wait(), timeout=10)

    # The rebalance does not wait for A (its session expired): B owns the group now.
    await b.assigned({partition})
    clock.advance(1)
    await b.flush()
    await b.post_alerts([alert(name, "1", clock, resolved=True)])
    await kafka.consume(b, partition)
    clock.advance(INTERVAL_S)
    await b.flush()
    assert await logged(pool, key) == (3, [f"{name}-2"], [f"{name}-1"])

    gate.set()
    assert await asyncio.wait_for(flushing, timeout=10) == 1
    sent = notifier.of(key)
    assert [reason for reason, _ in sent] == [FIRST, NEW, NotifyReason.SOME_RESOLVED, NEW]
    assert sent[1][1] == sent[3][1], "the same flush decided twice has one key: one webhook"
    assert await logged(pool, key) == (3, [f"{name}-2"], [f"{name}-1"]), "never backwards"
    assert a.entries[(key, "default")].sequence == 3, "A adopts the entry that won"
