"""The notifications consumer: deliver each idempotency key once, publish a result for each."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram

from notifier.channels.base import Channel, SendResult
from notifier.core.retry import FailureKind, RetryPolicy
from notifier.delivery.log import DeliveryLog
from opsmesh.clock import Clock
from opsmesh.events.notifications import (
    DeliveryOutcome,
    NotificationDelivered,
    NotificationRequested,
)
from opsmesh.kafka.consumer import BatchResult, Received, StatelessHandler
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.logging import get_logger
from opsmesh.topics import DELIVERIES

log = get_logger(__name__)


class ClaimedElsewhere(RuntimeError):
    """Another replica is delivering this key right now; retry the batch later."""


class DeliverStage(StatelessHandler):
    def __init__(
        self,
        *,
        channels: Callable[[str], Channel | None],
        delivery_log: DeliveryLog,
        producer: EventProducer,
        dead_letters: DeadLetterPublisher,
        retry: RetryPolicy,
        clock: Clock,
        registry: CollectorRegistry,
        instance: str,
    ) -> None:
        self._channels = channels
        self._log = delivery_log
        self._producer = producer
        self._dead_letters = dead_letters
        self._retry = retry
        self._clock = clock
        self._instance = instance
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not security
        self._outcomes = Counter(
            "notifier_deliveries", "Delivery outcomes", ["receiver", "outcome"], registry=registry
        )
        self._attempts = Counter(
            "notifier_send_attempts", "Send attempts", ["receiver", "result"], registry=registry
        )
        self._latency = Histogram(
            "notifier_delivery_seconds", "Request to delivered", ["receiver"], registry=registry
        )

    async def handle(self, batch: Sequence[Received[NotificationRequested]]) -> BatchResult:
        unique: dict[str, Received[NotificationRequested]] = {}
        for record in batch:
            unique.setdefault(record.event.idempotency_key, record)
        if not unique:
            return BatchResult()
        done = await self._log.delivered(unique)
        results = [
            self._result(r.event, DeliveryOutcome.DUPLICATE, attempts=0)
            for key, r in unique.items()
            if key in done
        ]
        pending = [r for key, r in unique.items() if key not in done]
        results.extend(await asyncio.gather(*(self._deliver(r) for r in pending)))
        await self._producer.publish_many(
            Outgoing(DELIVERIES, result.idempotency_key, result) for result in results
        )
        for result in results:
            self._outcomes.labels(result.receiver, result.outcome.value).inc()
        return BatchResult()

    async def _deliver(self, record: Received[NotificationRequested]) -> NotificationDelivered:
        request = record.event
        channel = self._channels(request.receiver)
        if channel is None:
            return await self._fail(
                record,
                "none",
                0,
                SendResult(
                    ok=False,
                    failure=FailureKind.NOT_CONFIGURED,
                    error=f"receiver {request.receiver!r} is not configured",
                ),
            )
        if not await self._log.claim(request.idempotency_key, self._instance):
            raise ClaimedElsewhere(request.idempotency_key)
        try:
            attempts, outcome = await self._send_with_retries(channel, request)
            if not outcome.ok:
                return await self._fail(record, channel.name, attempts, outcome)
            await self._log.record(
                key=request.idempotency_key,
                receiver=request.receiver,
                channel=channel.name,
                outcome=DeliveryOutcome.DELIVERED.value,
                attempts=attempts,
                status_code=outcome.status_code,
                error=None,
            )
            self._latency.labels(request.receiver).observe(
                max(0.0, self._clock.now() - request.requested_at)
            )
            return self._result(
                request,
                DeliveryOutcome.DELIVERED,
                attempts=attempts,
                channel=channel.name,
                status_code=outcome.status_code,
            )
        finally:
            await self._log.release(request.idempotency_key)

    async def _send_with_retries(
        self, channel: Channel, request: NotificationRequested
    ) -> tuple[int, SendResult]:
        deadline = time.monotonic() + self._retry.deadline_s
        attempt = 0
        while True:
            attempt += 1
            outcome = await channel.send(request)
            self._attempts.labels(
                request.receiver, "ok" if outcome.ok else str(outcome.failure)
            ).inc()
            if outcome.ok or outcome.failure is None or not outcome.failure.retryable:
                return attempt, outcome
            delay = self._retry.delay(attempt, outcome.retry_after_s, self._rng)
            if time.monotonic() + delay > deadline:
                return attempt, outcome
            log.info(
                "delivery failed; retrying",
                receiver=request.receiver,
                attempt=attempt,
                error=outcome.error,
                delay_s=round(delay, 3),
            )
            await asyncio.sleep(delay)  # backoff between attempts, not synchronisation

    async def _fail(
        self,
        record: Received[NotificationRequested],
        channel: str,
        attempts: int,
        outcome: SendResult,
    ) -> NotificationDelivered:
        request = record.event
        error = f"{outcome.failure}: {outcome.error}"
        log.warning("delivery failed; dead-lettering", receiver=request.receiver, error=error)
        await self._dead_letters.send(record.raw, DeadLetterReason.DELIVERY_FAILED, error)
        await self._dead_letters.flush()
        await self._log.record(
            key=request.idempotency_key,
            receiver=request.receiver,
            channel=channel,
            outcome=DeliveryOutcome.FAILED.value,
            attempts=attempts,
            status_code=outcome.status_code,
            error=error,
        )
        return self._result(
            request,
            DeliveryOutcome.FAILED,
            attempts=attempts,
            channel=channel,
            status_code=outcome.status_code,
            error=error,
        )

    def _result(
        self,
        request: NotificationRequested,
        outcome: DeliveryOutcome,
        *,
        attempts: int,
        channel: str = "none",
        status_code: int | None = None,
        error: str | None = None,
    ) -> NotificationDelivered:
        now = self._clock.now()
        return NotificationDelivered(
            idempotency_key=request.idempotency_key,
            receiver=request.receiver,
            channel=channel,
            outcome=outcome,
            attempts=attempts,
            error=error,
            status_code=status_code,
            finished_at=now,
            latency_ms=max(0.0, (now - request.requested_at) * 1000),
        )
