"""The delivery log (PostgreSQL) and the in-flight claim (Redis).

Exactly once per (idempotency key, integration): a pair with a ``delivered`` row is never
sent again. The remaining window is between a successful send and its row being
committed (a crash there); rows are written in small group commits (one INSERT for
every outcome that finished in the last few milliseconds), so the window is one
flush interval plus one INSERT. Receivers close it: webhooks carry the idempotency key
as ``webhook-id``, PagerDuty merges on ``dedup_key`` (derived from the group), Slack
updates rather than reposts on resolve, email carries ``X-Opsmesh-Idempotency-Key``.
The Redis claim stops two replicas sending the same pair at once during a rebalance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from opsmesh.clock import sleep_until_stopped
from opsmesh.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    integration: str
    receiver: str
    channel: str
    outcome: str
    attempts: int
    status_code: int | None
    error: str | None


# Per key: take it if free, or if this owner already holds it; 1 when ours.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == false or holder == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""


def _claim_name(key: str, integration: str) -> str:
    return f"notifier:claim:{integration}:{key}"


class DeliveryLog:
    def __init__(
        self, pool: AsyncConnectionPool, redis: aioredis.Redis, *, claim_ttl_s: float
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._claim_ttl_ms = int(claim_ttl_s * 1000)
        self._claim_script = redis.register_script(_CLAIM)

    async def delivered(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (key, integration) pairs already delivered; a pair that failed before may be
        tried again (a DLQ replay), so only successful deliveries count."""
        wanted = list(pairs)
        if not wanted:
            return set()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT d.idempotency_key, d.integration FROM notifier.delivery_log d"
                " JOIN unnest(%s::text[], %s::text[]) AS w(k, i)"
                " ON d.idempotency_key = w.k AND d.integration = w.i"
                " WHERE d.outcome = 'delivered'",
                ([k for k, _ in wanted], [i for _, i in wanted]),
            )
            return {(row[0], row[1]) for row in await cursor.fetchall()}

    async def claim_many(self, pairs: list[tuple[str, str]], owner: str) -> list[bool]:
        """Claim each pair for ``owner``. A claim already held by the same owner counts as
        ours: it is a previous life of this instance (killed before it released)."""
        if not pairs:
            return []
        names = [_claim_name(key, integration) for key, integration in pairs]
        # One round trip and one command for the whole batch (a pipeline of SETs costs
        # more to build than the network saves).
        won = await self._claim_script(keys=names, args=[owner, self._claim_ttl_ms])
        return [bool(w) for w in won]

    async def claim(self, key: str, integration: str, owner: str) -> bool:
        return (await self.claim_many([(key, integration)], owner))[0]

    async def release(self, pairs: Iterable[tuple[str, str]]) -> None:
        names = [_claim_name(key, integration) for key, integration in pairs]
        if names:
            await self._redis.delete(*names)

    async def record_many(self, outcomes: list[Outcome]) -> None:
        """Record outcomes and release their claims. A delivered pair is final and never
        overwritten; a failed one is replaced by a later attempt."""
        if not outcomes:
            return
        # One row per pair per statement (ON CONFLICT cannot touch a row twice).
        outcomes = list({(o.key, o.integration): o for o in outcomes}.values())
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO notifier.delivery_log AS d (idempotency_key, integration, receiver,"
                " channel, outcome, attempts, status_code, error)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
                " %s::text[], %s::int[], %s::int[], %s::text[])"
                " ON CONFLICT (idempotency_key, integration) DO UPDATE SET"
                " outcome = EXCLUDED.outcome, attempts = d.attempts + EXCLUDED.attempts,"
                " status_code = EXCLUDED.status_code, error = EXCLUDED.error, finished_at = now()"
                " WHERE d.outcome <> 'delivered'",
                (
                    [o.key for o in outcomes],
                    [o.integration for o in outcomes],
                    [o.receiver for o in outcomes],
                    [o.channel for o in outcomes],
                    [o.outcome for o in outcomes],
                    [o.attempts for o in outcomes],
                    [o.status_code for o in outcomes],
                    [o.error for o in outcomes],
                ),
            )
        await self._redis.delete(*{_claim_name(o.key, o.integration) for o in outcomes})


class DeliveryLogUnavailable(RuntimeError):
    """The delivery log could not be written when the service stopped: the delivery's
    job stays unfinished (its offset held) and is replayed after the restart."""


@dataclass(slots=True)
class _Pending:
    outcome: Outcome
    result: Any
    row: asyncio.Future[None]
    published: asyncio.Future[None]


class LogWriter:
    """Group commit for the delivery log: outcomes that finish close together share one
    INSERT, and their results one publish, which is what lets thousands of deliveries a
    second be recorded. Rows go first, so a published result always has its row; the
    publish runs beside the next INSERT, so a sender waits for its row only.

    A failed INSERT is retried with backoff (0.2 s doubling to 5 s) until ``give_up``
    (the service's stop) is set; then one last attempt, and if that fails too, every row
    not written fails with ``DeliveryLogUnavailable`` (so its sender's job ends
    unfinished and is replayed after the restart) and the writer ends: a shutdown does
    not wait on a database that is away."""

    def __init__(
        self,
        log: DeliveryLog,
        publish: Callable[[list[Any]], Awaitable[None]],
        *,
        max_batch: int = 500,
    ) -> None:
        self._log = log
        self._publish = publish
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._publishing: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._gave_up: DeliveryLogUnavailable | None = None

    def record(
        self, outcome: Outcome, result: Any
    ) -> tuple[asyncio.Future[None], asyncio.Future[None]]:
        """(row committed, result published)."""
        loop = asyncio.get_running_loop()
        pending = _Pending(outcome, result, loop.create_future(), loop.create_future())
        if self._gave_up is not None:
            _abandon(pending, self._gave_up)
            return pending.row, pending.published
        self._pending.append(pending)
        self._wake.set()
        return pending.row, pending.published

    async def run(self, stop: asyncio.Event, *, give_up: asyncio.Event | None = None) -> None:
        """Write rows until ``stop`` and nothing is pending; see the class for ``give_up``."""
        give_up = give_up or stop
        while True:
            if not self._pending:
                if stop.is_set():
                    if self._publishing:
                        await asyncio.gather(*self._publishing, return_exceptions=True)
                    return
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            batch, self._pending = (
                self._pending[: self._max_batch],
                self._pending[self._max_batch :],
            )
            if not await self._write(batch, give_up):
                if self._publishing:
                    await asyncio.gather(*self._publishing, return_exceptions=True)
                return
            for p in batch:
                if not p.row.done():
                    p.row.set_result(None)
            task = asyncio.create_task(self._publish_batch(batch))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _write(self, batch: list[_Pending], give_up: asyncio.Event) -> bool:
        """Write ``batch``'s rows, retrying; False when given up (every row not written
        then failed)."""
        delay = 0.2
        while True:
            try:
                await self._log.record_many([p.outcome for p in batch])
            except Exception as exc:
                if give_up.is_set():
                    self._gave_up = DeliveryLogUnavailable(
                        f"delivery log write failed at shutdown: {type(exc).__name__}: {exc}"
                    )
                    abandoned, self._pending = [*batch, *self._pending], []
                    log.error(
                        "delivery log unavailable at shutdown; the deliveries are replayed",
                        rows=len(abandoned),
                        error=str(self._gave_up),
                    )
                    for pending in abandoned:
                        _abandon(pending, self._gave_up)
                    return False
                # The sends happened; losing their rows would resend them. Keep trying
                # until the service stops (its stop ends the wait: one last attempt).
                log.exception("delivery log write failed; retrying", rows=len(batch))
                await sleep_until_stopped(give_up, delay)
                delay = min(delay * 2, 5.0)
                continue
            return True

    async def _publish_batch(self, batch: list[_Pending]) -> None:
        try:
            await self._publish([p.result for p in batch])
        except Exception as exc:
            # Rows are in, results not out: the jobs stay unfinished (offsets held) and a
            # replay publishes them as duplicates.
            for p in batch:
                if not p.published.done():
                    p.published.set_exception(exc)
            return
        for p in batch:
            if not p.published.done():
                p.published.set_result(None)


def _abandon(pending: _Pending, error: DeliveryLogUnavailable) -> None:
    """The row will not be written: its sender learns why; its result is never published
    (cancelled, which nobody awaits once the row failed)."""
    if not pending.row.done():
        pending.row.set_exception(error)
    pending.published.cancel()
