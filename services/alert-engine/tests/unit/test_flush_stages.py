"""The flush's stages one by one (plan → rate limit → produce → log → apply), each over
the fakes of ``alert_engine.testing``, in simulated time."""

from __future__ import annotations

import textwrap

import pytest
from prometheus_client import CollectorRegistry

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.alerts import StoredAlert
from alert_engine.core.amconfig import parse_config
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.matchers import parse_matchers
from alert_engine.core.silences import Silence, Silences
from alert_engine.pipeline.state import flush
from alert_engine.pipeline.state.held import Held
from alert_engine.pipeline.state.metrics import EngineMetrics
from alert_engine.testing import (
    FakeLimiter,
    FakeNotificationLog,
    FakePublisher,
    FakeSuppressedLog,
)
from opsmesh.events.notifications import NotificationRequested, NotifyReason
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_000.0
WAIT, INTERVAL = 30.0, 300.0
CONFIG = parse_config(
    textwrap.dedent(
        f"""
        route:
          receiver: ops
          group_by: [alertname]
          group_wait: {WAIT:.0f}s
          group_interval: {INTERVAL:.0f}s
          repeat_interval: 4h
          routes:
            - receiver: db
              matchers: ['team="db"']
        receivers: [{{name: ops}}, {{name: db}}]
        """
    )
)


class World:
    """An engine's in-memory state and the stages over fakes, on a simulated clock."""

    def __init__(self) -> None:
        self.clock = FakeClock(T0)
        self.held = Held(Engine(CONFIG, ActiveAlerts(), Silences()), Evaluator([]))
        self.registry = CollectorRegistry()
        self.metrics = EngineMetrics(self.registry)
        self.limiter = FakeLimiter()
        self.producer = FakePublisher()
        self.log = FakeNotificationLog()
        self.suppressed = FakeSuppressedLog()
        self.stages = flush.FlushStages(
            limiter=self.limiter,
            producer=self.producer,
            log=self.log,
            suppressed=self.suppressed,
            metrics=self.metrics,
            external_url="http://engine",
        )

    def post(self, name: str, **labels: str) -> None:
        alert = StoredAlert(
            name, {"alertname": name, **labels}, {}, self.clock.now(), None, self.clock.now()
        )
        _, stored = self.held.engine.alerts.put(alert, self.clock.now())
        assert stored is not None
        self.held.engine.apply(stored, self.clock.now())

    def silence(self, matchers: str) -> None:
        now = self.clock.now()
        found = Silence("", tuple(parse_matchers(matchers)), now, now + 3600, "me", "c", now)
        self.held.engine.silences.set(found, now)

    def plan(self) -> flush.Flush:
        return flush.plan(self.held, self.clock.now(), self.metrics)

    async def run(self) -> int:
        """A whole flush, as ``EngineState.flush`` runs it."""
        planned = self.plan()
        return flush.apply(self.held, await self.stages.send(planned), self.metrics)

    def counted(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def requests(self) -> list[NotificationRequested]:
        return [o.event for o in self.producer.published]  # type: ignore[misc]


def receivers(plans: list[object]) -> list[str]:
    return sorted(p.receiver for p in plans)  # type: ignore[attr-defined]


async def test_plan_finds_the_due_groups_and_counts_the_muted_ones() -> None:
    world = World()
    world.post("Disk", team="db")
    world.post("Cpu")
    world.silence('alertname="Cpu"')
    assert world.plan().plans == [], "group_wait has not elapsed"

    world.clock.advance(WAIT)
    planned = world.plan()

    assert planned.at == T0 + WAIT
    assert receivers(planned.plans) == ["db", "ops"]
    sending = [p for p in planned.plans if p.reason is not None]
    assert receivers(sending) == ["db"]
    suppressed = "alert_engine_notifications_suppressed_total"
    assert world.counted(suppressed, receiver="ops", reason="all_muted") == 1
    assert world.counted(suppressed, receiver="db", reason="all_muted") == 0


async def test_rate_limit_asks_one_token_per_sending_plan_and_postpones_the_refused() -> None:
    world = World()
    world.post("Disk", team="db")
    world.post("Cpu")
    world.post("Mem")
    world.silence('alertname="Mem"')
    world.clock.advance(WAIT)
    world.limiter.tokens["db"] = 0

    limited = await world.stages.rate_limit(world.plan())

    (asked,) = world.limiter.calls
    assert sorted(asked) == ["db", "ops"], "the muted group asks for no token"
    assert receivers(limited.sending) == ["ops"]
    assert receivers(limited.postponed) == ["db"]


async def test_produce_sends_one_request_per_sending_plan_with_its_idempotency_key() -> None:
    world = World()
    world.post("Disk", team="db")
    world.post("Cpu")
    world.clock.advance(WAIT)
    world.limiter.tokens["db"] = 0
    limited = await world.stages.rate_limit(world.plan())

    await world.stages.produce(limited)

    (request,) = world.requests()
    (plan,) = limited.sending
    assert request.receiver == "ops"
    assert request.idempotency_key == plan.idempotency_key
    assert request.reason is NotifyReason.FIRST_NOTIFICATION


async def test_log_records_what_was_sent_and_the_postponed_as_suppressed() -> None:
    world = World()
    world.post("Disk", team="db")
    world.post("Cpu")
    world.clock.advance(WAIT)
    world.limiter.tokens["db"] = 0
    limited = await world.stages.rate_limit(world.plan())

    logged = await world.stages.log(limited)

    ((key, entry),) = world.log.entries.items()
    assert key[1] == "ops"
    assert entry.sequence == 1
    assert logged.logged == {}, "nothing refused"
    ((group_key, receiver, reason, alerts),) = world.suppressed.rows
    assert (receiver, reason, alerts) == ("db", "rate_limited", 1)
    assert group_key == limited.postponed[0].group.key
    assert world.counted(
        "alert_engine_notifications_suppressed_total", receiver="db", reason="rate_limited"
    )


async def test_log_returns_the_entry_another_replica_logged_since_and_apply_adopts_it() -> None:
    world = World()
    world.post("Cpu")
    world.clock.advance(WAIT)
    limited = await world.stages.rate_limit(world.plan())
    (plan,) = limited.sending
    key = (plan.group.key, "ops")
    newer = LogEntry(frozenset({"Cpu"}), frozenset(), T0 + 1, 7)  # a rebalance mid-flush
    world.log.entries[key] = newer

    logged = await world.stages.log(limited)
    flush.apply(world.held, logged, world.metrics)

    assert logged.logged == {key: newer}
    assert world.held.entries[key] == newer, "the log only goes forwards"


async def test_apply_finishes_the_sent_groups_and_retries_the_postponed_next_interval() -> None:
    world = World()
    world.post("Disk", team="db")
    world.post("Cpu")
    world.clock.advance(WAIT)
    world.limiter.tokens["db"] = 0

    sent = await world.run()

    assert sent == 1
    assert [k[1] for k in world.held.entries] == ["ops"]
    assert world.counted(
        "alert_engine_notifications_requested_total",
        receiver="ops",
        reason="first_notification",
    )
    assert world.counted("alert_engine_aggregation_groups") == 2
    assert world.plan().plans == [], "neither group is due again at once"

    world.limiter.tokens["db"] = 1
    world.clock.advance(INTERVAL)
    assert await world.run() == 1
    assert [r.receiver for r in world.requests()] == ["ops", "db"]
    assert world.requests()[1].reason is NotifyReason.FIRST_NOTIFICATION


@pytest.mark.parametrize("failing", ["rate limit", "produce", "log"])
async def test_a_stage_that_fails_leaves_the_groups_due_with_the_same_key(failing: str) -> None:
    world = World()
    world.post("Cpu")
    world.clock.advance(WAIT)
    fake = {"rate limit": world.limiter, "produce": world.producer, "log": world.log}[failing]
    fake.failure = ConnectionRefusedError(111, failing)

    planned = world.plan()
    with pytest.raises(ConnectionRefusedError):
        await world.stages.send(planned)  # so ``apply`` never runs

    assert world.held.entries == {}
    assert await world.run() == 1, "planned again at the next tick"
    keys = [r.idempotency_key for r in world.requests()]
    assert keys[-1] == planned.plans[0].idempotency_key
    assert len(world.log.entries) == 1
