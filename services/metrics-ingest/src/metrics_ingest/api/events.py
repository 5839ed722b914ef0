"""HTTP ingest of the other application events, for producers that cannot reach Kafka:
``POST /api/v1/slow-queries`` (``SlowQueryObserved``), ``POST /api/v1/health-reports``
(``HealthReported``) and ``POST /api/v1/profiles`` (``ProfileRecorded``), published to
their topics as the Kafka path would carry them.

They share ``POST /api/v1/metrics``' bearer token, size limits and answers
(``api.gate``); like it, a request is answered once the broker acknowledged its events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from metrics_ingest.bootstrap import SERVICES
from metrics_ingest.rollup.events_body import parse_events
from metrics_ingest.rollup.ingest import BadBody
from opsmesh.events.base import Event
from opsmesh.events.health import HealthReported
from opsmesh.events.profiles import ProfileRecorded
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import HEALTH, PROFILES, SLOW_QUERIES, Topic

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _slow_query_key(event: Any) -> str:
    # The topic's key is the fingerprint, which query-analyzer computes; producers that
    # cannot use the database, as the topic allows (opsmesh.topics).
    return str(event.database)


def _health_key(event: Any) -> str:
    return f"{event.service}/{event.instance}"


def _profile_key(event: Any) -> str:
    return f"{event.service}/{event.route}"


ENDPOINTS: tuple[tuple[str, type[Event], Topic, Callable[[Any], str]], ...] = (
    ("/api/v1/slow-queries", SlowQueryObserved, SLOW_QUERIES, _slow_query_key),
    ("/api/v1/health-reports", HealthReported, HEALTH, _health_key),
    ("/api/v1/profiles", ProfileRecorded, PROFILES, _profile_key),
)


def ingest_of(event_type: type[Event], topic: Topic, key: Callable[[Any], str]) -> Handler:
    """The handler that publishes ``event_type`` events to ``topic``, keyed by ``key``."""

    async def ingest(request: web.Request) -> web.Response:
        http = request.app[SERVICES].http
        body = await http.body(request)
        if isinstance(body, web.Response):
            return body
        try:
            parsed = parse_events(body, event_type, http.limits.max_samples)
        except BadBody as exc:
            status = 413 if exc.reason.value == "too_many_samples" else 400
            return http.fail(status, exc.reason.value, exc.detail)
        if parsed.events:
            refused = await http.publish([Outgoing(topic, key(e), e) for e in parsed.events])
            if refused is not None:
                return refused
        return http.answer(len(parsed.events), parsed.rejected)

    return ingest
