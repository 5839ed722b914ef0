"""HTTP ingest of the other application events, for producers that cannot reach Kafka:
``POST /api/v1/slow-queries`` (``SlowQueryObserved``) and ``POST /api/v1/health-reports``
(``HealthReported``), published to their topics as the Kafka path would carry them.

They share ``POST /api/v1/metrics``' bearer token, size limits and answers; like it, a
request is answered once the broker acknowledged its events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from metrics_ingest.rollup.events_body import parse_events
from metrics_ingest.rollup.ingest import BadBody, Rejected
from opsmesh.events.base import Event
from opsmesh.events.health import HealthReported
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import HEALTH, SLOW_QUERIES, Topic


class Publisher(Protocol):
    async def publish_batched(self, items: Sequence[Outgoing]) -> None: ...


Body = Callable[[web.Request], Awaitable[bytes | web.Response]]
Answer = Callable[[int, Sequence[Rejected]], web.Response]
Fail = Callable[[int, str, str], web.Response]


def _slow_query_key(event: Any) -> str:
    # The topic's key is the fingerprint, which query-analyzer computes; producers that
    # cannot use the database, as the topic allows (opsmesh.topics).
    return str(event.database)


def _health_key(event: Any) -> str:
    return f"{event.service}/{event.instance}"


ENDPOINTS: tuple[tuple[str, type[Event], Topic, Callable[[Any], str]], ...] = (
    ("/api/v1/slow-queries", SlowQueryObserved, SLOW_QUERIES, _slow_query_key),
    ("/api/v1/health-reports", HealthReported, HEALTH, _health_key),
)


class EventIngest:
    def __init__(
        self,
        body: Body,
        answer: Answer,
        fail: Fail,
        producer: Callable[[], Publisher],
        max_events: int,
    ) -> None:
        self._body = body
        self._answer = answer
        self._fail = fail
        self._producer = producer
        self._max_events = max_events

    def routes(self, app: web.Application) -> None:
        for path, event_type, topic, key in ENDPOINTS:
            app.router.add_post(path, self._handler(event_type, topic, key))

    def _handler(
        self, event_type: type[Event], topic: Topic, key: Callable[[Any], str]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def ingest(request: web.Request) -> web.Response:
            body = await self._body(request)
            if isinstance(body, web.Response):
                return body
            try:
                parsed = parse_events(body, event_type, self._max_events)
            except BadBody as exc:
                status = 413 if exc.reason.value == "too_many_samples" else 400
                return self._fail(status, exc.reason.value, exc.detail)
            if parsed.events:
                await self._producer().publish_batched(
                    [Outgoing(topic, key(e), e) for e in parsed.events]
                )
            return self._answer(len(parsed.events), parsed.rejected)

        return ingest
