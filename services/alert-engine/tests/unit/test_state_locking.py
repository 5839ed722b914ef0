"""The engine state's one rule: no I/O is awaited under its lock. With every PostgreSQL
call of the state held open (a paused database), posting alerts still completes, and
everything that waited completes once the database answers — nothing lost, nothing
routed out of merge order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import default_config
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.listing import ListQuery
from alert_engine.core.matchers import Matcher
from alert_engine.core.rules import Comparison, Rule, RuleKind
from alert_engine.core.silences import Silence, Silences
from alert_engine.pipeline.state import EngineState, ListingRead, Stores
from alert_engine.receiver_limits import Limits, ReceiverLimiter
from opsmesh.events.alerts import AlertsRouted
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.handler import Received
from opsmesh.kafka.producer import Outgoing
from opsmesh.ratelimit import MemoryRateLimiter
from opsmesh.topics import ALERT_GROUPS
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_000.0
MATCHER = Matcher.from_api("alertname", "x", False, True)
RULES = [
    *(
        Rule(name=name, signal=name, op=Comparison.GT, threshold=0.5)
        for name in ("RuleAlert", "One", "Two")
    ),
    Rule(name="Absent", signal="absent", kind=RuleKind.ABSENCE, absent_for_s=600),
]


class Database:
    """Every store of the fake database waits on one gate (closed: PostgreSQL paused),
    and can fail its next calls (PostgreSQL refusing)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.failures = 0
        self.calls: list[str] = []
        self.waiting = 0
        self.changed = asyncio.Condition()

    async def io(self, what: str) -> None:
        async with self.changed:
            self.waiting += 1
            self.changed.notify_all()
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1
        if self.failures:
            self.failures -= 1
            raise OSError(f"{what}: connection refused")
        self.calls.append(what)


class Store:
    """RuleAlertStore, SeriesStore, ActiveAlertStore and NotificationLog at once."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.saved: list[StoredAlert] = []
        self.silences: list[Silence] = []

    async def load(self, *_: Any, **__: Any) -> list[Any]:
        await self._db.io("load")
        return []

    async def save(self, alerts: Sequence[Any] = (), *_: Any, **__: Any) -> None:
        await self._db.io("save")
        self.saved.extend(a for a in alerts if isinstance(a, StoredAlert))

    async def record(self, *_: Any) -> dict[Any, Any]:
        await self._db.io("record")
        return {}

    async def load_silences(self) -> list[Silence]:
        await self._db.io("load_silences")
        return list(self.silences)

    async def snapshot(self, _: float) -> tuple[list[StoredAlert], list[Silence]]:
        try:
            await self._db.io("snapshot")
        except OSError as exc:
            raise psycopg.OperationalError(str(exc)) from None
        return list(self.saved), list(self.silences)

    async def save_silences(self, silences: Sequence[Silence]) -> None:
        await self._db.io("save_silences")
        self.silences.extend(silences)

    async def delete(self, *_: Any) -> None:
        await self._db.io("delete")

    async def delete_silences(self, *_: Any) -> None:
        await self._db.io("delete_silences")

    async def put(self, *_: Any) -> None:
        await self._db.io("put")

    async def version(self) -> tuple[int, float]:
        await self._db.io("version")
        return (0, 0.0)

    async def persist_routed(self, *_: Any) -> set[str]:
        await self._db.io("persist_routed")
        return set()

    async def suppressed(self, *_: Any) -> None:
        await self._db.io("suppressed")


class RuleGroups(Store):
    async def load(self, *_: Any, **__: Any) -> dict[str, str]:  # type: ignore[override]
        await self._db.io("load rule groups")
        return {}


class Log(Store):
    async def load(self, *_: Any, **__: Any) -> dict[Any, Any]:  # type: ignore[override]
        await self._db.io("load log")
        return {}


class Producer:
    """Acknowledges at once; keeps what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def enqueue(self, items: Iterable[Outgoing]) -> list[asyncio.Future[Any]]:
        out = []
        for item in items:
            self.sent.append(item)
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            out.append(done)
        return out

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        await self.enqueue(items)

    def names(self) -> list[str]:
        return [
            a.labels["alertname"]
            for o in self.sent
            if isinstance(o.event, AlertsRouted)
            for a in o.event.alerts
        ]

    def routed(self) -> list[tuple[str, float]]:
        return [
            (a.fingerprint, a.updated_at)
            for o in self.sent
            if isinstance(o.event, AlertsRouted)
            for a in o.event.alerts
        ]


class PausedLimiter:
    """Token buckets in a Redis that does not answer until ``open`` is set."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.asked = asyncio.Event()

    async def allow_many(self, receivers: Sequence[str]) -> list[bool]:
        self.asked.set()
        await self.open.wait()
        return [True for _ in receivers]


def make_state(
    db: Database,
    producer: Producer,
    clock: FakeClock,
    limiter: Any = None,
    registry: CollectorRegistry | None = None,
) -> EngineState:
    store = Store(db)
    return EngineState(
        engine=Engine(default_config(group_by=("alertname",)), ActiveAlerts(), Silences()),
        evaluator=Evaluator(RULES),
        file_rules=RULES,
        stores=Stores(
            rules=store,  # type: ignore[arg-type]
            series=store,  # type: ignore[arg-type]
            active=store,  # type: ignore[arg-type]
            log=Log(db),  # type: ignore[arg-type]
            rule_groups=RuleGroups(db),  # type: ignore[arg-type]
        ),
        producer=producer,  # type: ignore[arg-type]
        limiter=limiter or ReceiverLimiter(MemoryRateLimiter(clock.now), Limits()),
        clock=clock,
        registry=registry or CollectorRegistry(),
        external_url="http://engine",
    )


def posted(name: str, at: float, ends_at: float | None = None) -> StoredAlert:
    return StoredAlert(name, {"alertname": name}, {}, at, ends_at, at)


def signal(name: str, value: float, at: float = T0) -> Received[SignalObserved]:
    """A reading of ``name``: 1.0 fires its threshold rule; ``absent`` is the series
    the absence rule watches (its last-seen time is written with each evaluation)."""
    return Received(
        SignalObserved(
            source=SignalSource.METRICS,
            kind=SignalKind.ROLLUP,
            name=name,
            subject=name,
            labels={"job": "x"},
            value=value,
            stats={},
            observed_at=at,
        ),
        message=None,
    )


async def all_waiting(db: Database, count: int) -> None:
    async def wait() -> None:
        async with db.changed:
            await db.changed.wait_for(lambda: db.waiting == count)

    await asyncio.wait_for(wait(), timeout=10)  # a bound, not a timing claim


async def test_posting_never_waits_on_postgres_held_by_the_other_paths() -> None:
    db, producer, clock = Database(), Producer(), FakeClock(T0)
    state = make_state(db, producer, clock)
    await state.restore()
    db.open.clear()  # PostgreSQL paused: every call waits
    work = await state.evaluate([signal("RuleAlert", 1.0)])
    waiting = [
        asyncio.create_task(state.write_rules(work)),
        asyncio.create_task(state.sync()),
        asyncio.create_task(
            state.set_silence(
                Silence(
                    "",
                    (Matcher.from_api("alertname", "x", False, True),),
                    T0,
                    T0 + 60,
                    "me",
                    "c",
                    T0,
                )
            )
        ),
        asyncio.create_task(state.maintain(30)),
        asyncio.create_task(state.put_rule_group("g", "groups: []")),
        asyncio.create_task(state.listing()),
    ]
    await all_waiting(db, len(waiting))  # every other path waits on PostgreSQL

    accepted = await asyncio.wait_for(state.post_alerts([posted("Api", T0)]), timeout=10)

    assert accepted == (1, 0)
    assert state.engine.alerts.get("Api") is not None
    assert all(not t.done() for t in waiting), "the database is still paused"
    # The rule alert is routed only once durable; the POST needs no PostgreSQL.
    assert producer.routed() == [("Api", T0)]

    db.open.set()
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)
    assert producer.names() == ["Api", "RuleAlert"]
    assert state.engine.silences.all(), "the silence is applied once durable"


async def test_a_failed_write_is_resumed_by_the_next_batch_and_nothing_is_lost() -> None:
    db, producer, clock = Database(), Producer(), FakeClock(T0)
    state = make_state(db, producer, clock)
    await state.restore()
    db.calls.clear()
    first = await state.evaluate([signal("One", 1.0), signal("absent", 0.0)])
    db.failures = 1  # PostgreSQL refuses the first write: the series' last-seen times
    try:
        await state.write_rules(first)
    except OSError:
        pass
    else:
        raise AssertionError("the write should have failed")
    assert producer.routed() == [], "nothing routed before it is durable"

    clock.advance(1)  # the next batch (the evaluator has moved on)
    second = await state.evaluate([signal("Two", 1.0), signal("absent", 0.0)])
    await state.write_rules(second)

    assert producer.names() == ["One", "Two"]
    assert db.calls.count("record") == 2, "each evaluation's rule state written once"
    assert db.calls.count("save") == 3, "last-seen times once (the newest), alert rows twice"


async def test_a_flush_waiting_on_redis_holds_neither_posts_nor_the_engine_lock() -> None:
    """plan (lock) → rate limit (Redis, paused here) → produce → log → apply (lock)."""
    db, producer, clock, limiter = Database(), Producer(), FakeClock(T0), PausedLimiter()
    state = make_state(db, producer, clock, limiter)
    await state.restore()
    await state.assigned(set(range(ALERT_GROUPS.partitions)))  # every group is ours
    await state.post_alerts([posted("Due", T0)])
    batches = [o.event for o in producer.sent if isinstance(o.event, AlertsRouted)]
    await state.routed([b"{}"], batches)  # consumed by its owner: this replica
    clock.advance(30)  # group_wait
    flushing = asyncio.create_task(state.flush())
    await asyncio.wait_for(limiter.asked.wait(), timeout=10)

    accepted = await asyncio.wait_for(state.post_alerts([posted("Next", T0 + 30)]), timeout=10)
    listing, _ = await asyncio.wait_for(state.listing(), timeout=10)

    assert accepted == (1, 0)
    assert {a.alert.fingerprint for a in listing.alerts(ListQuery())} >= {"Due", "Next"}
    assert not flushing.done(), "Redis is still paused"
    limiter.open.set()
    assert await asyncio.wait_for(flushing, timeout=10) == 1
    assert db.calls.count("record") == 1, "the notification logged once produced"


def listed(state: EngineState) -> Any:
    async def run() -> tuple[list[tuple[str, float]], ListingRead]:
        listing, read = await state.listing()
        return [
            (a.alert.fingerprint, a.alert.updated_at) for a in listing.alerts(ListQuery())
        ], read

    return run()


async def test_listings_read_postgres_with_this_replicas_newer_merges_on_top() -> None:
    db, producer, clock = Database(), Producer(), FakeClock(T0)
    state = make_state(db, producer, clock)
    store: Store = state.stores.active  # type: ignore[assignment]
    # Rows another replica's groups wrote; this replica never synced them.
    store.saved.extend([posted("Elsewhere", T0), posted("Both", T0)])
    await state.post_alerts([posted("Both", T0 + 1)])  # merged here, its row not yet written

    assert await listed(state) == ([("Both", T0 + 1), ("Elsewhere", T0)], ListingRead.DURABLE)


async def test_listings_answer_from_memory_when_postgres_fails_or_other_reads_hold_it() -> None:
    db, producer, clock = Database(), Producer(), FakeClock(T0)
    state = make_state(db, producer, clock)
    state.listing_timeout_s = 0.05
    store: Store = state.stores.active  # type: ignore[assignment]
    store.saved.append(posted("Elsewhere", T0))
    await state.post_alerts([posted("Here", T0)])

    db.failures = 1
    assert await listed(state) == ([("Here", T0)], ListingRead.UNAVAILABLE)

    db.open.clear()  # PostgreSQL paused: the read is late, and is left to finish alone
    assert await listed(state) == ([("Here", T0)], ListingRead.UNAVAILABLE)
    # It still holds the one read slot: the next request reads no more of PostgreSQL.
    assert await listed(state) == ([("Here", T0)], ListingRead.BUSY)
    assert db.waiting == 1
    db.open.set()
    state.listing_timeout_s = 10  # a bound: the late read frees the slot as it finishes
    _, read = await asyncio.wait_for(listed(state), timeout=20)
    assert read is ListingRead.DURABLE
