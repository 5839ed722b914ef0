"""Test doubles and hand-built inputs for alert-engine's tests and benchmarks; no runtime
module imports this."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alert_engine.core.decision import LogEntry
from alert_engine.core.flush import FlushPlan
from opsmesh.kafka.producer import Outgoing

LogKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class PostedAlert:
    """An alert as a client posts it, built by hand (``core.alerts.Posted``)."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str


@dataclass
class Failing:
    """Makes the next call of a fake raise ``failure`` (once), as a broker or a database
    that refuses."""

    failure: BaseException | None = None

    def check(self) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure


@dataclass
class FakeLimiter(Failing):
    """Per-receiver token counts (``tokens``; a receiver not in it is never limited),
    taken one per entry in order, as ``ReceiverLimiter.allow_many``; every call is kept."""

    tokens: dict[str, int] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    async def allow_many(self, receivers: Sequence[str]) -> list[bool]:
        self.check()
        self.calls.append(list(receivers))
        allowed = []
        for receiver in receivers:
            left = self.tokens.get(receiver)
            if left is not None:
                self.tokens[receiver] = max(0, left - 1)
            allowed.append(left is None or left > 0)
        return allowed


@dataclass
class FakePublisher(Failing):
    """Keeps what is published (acknowledged at once), in order."""

    published: list[Outgoing] = field(default_factory=list)

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        records = list(items)
        self.check()
        self.published.extend(records)


@dataclass
class FakeNotificationLog(Failing):
    """The notification log in memory, as ``NotificationLog.record`` keeps it: never
    backwards (an entry replaces the logged one only with a higher sequence); returns
    the logged entry of each plan whose own was refused."""

    entries: dict[LogKey, LogEntry] = field(default_factory=dict)

    async def load(self) -> dict[LogKey, LogEntry]:
        return dict(self.entries)

    async def record(self, plans: Sequence[FlushPlan]) -> dict[LogKey, LogEntry]:
        self.check()
        refused: dict[LogKey, LogEntry] = {}
        for plan in plans:
            if plan.entry is None or plan.reason is None:
                continue
            key = (plan.group.key, plan.receiver)
            logged = self.entries.get(key)
            if logged is None or logged.sequence < plan.entry.sequence:
                self.entries[key] = plan.entry
            else:
                refused[key] = logged
        return refused


@dataclass
class FakeSuppressedLog(Failing):
    """The rate-limited flushes recorded for ``/api/v1/suppressed``:
    (group key, receiver, reason, alerts)."""

    rows: list[tuple[str, str, str, int]] = field(default_factory=list)

    async def suppressed(self, rows: Sequence[tuple[str, str, str, int]]) -> None:
        self.check()
        self.rows.extend(rows)
