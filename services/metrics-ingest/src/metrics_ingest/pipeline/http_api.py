"""HTTP endpoints: ``POST /api/v1/metrics``, ``GET /metrics/apps``, ``GET /api/v1/series``;
``POST /api/v1/slow-queries`` and ``/api/v1/health-reports`` (``event_ingest``);
``POST /api/v1/write``, Prometheus remote write (``remote_write_api``).

HTTP ingest publishes accepted samples to the metrics topic (keyed by series) and
answers once the broker has acknowledged them (acks=all). Going through Kafka rather
than straight into the rollups keeps one path for every sample: the partition that owns
a series owns its windows on whichever replica holds it, and the offset/checkpoint
machinery makes an acknowledged sample durable across a crash. A direct hand-off would
acknowledge samples held only in one process's memory.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CollectorRegistry, Counter
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.openapi import openapi_document
from metrics_ingest.pipeline.event_ingest import EventIngest
from metrics_ingest.pipeline.remote_write_api import PATH as REMOTE_WRITE
from metrics_ingest.pipeline.remote_write_api import remote_write_handler
from metrics_ingest.pipeline.series import query_series
from metrics_ingest.rollup.decompress import (
    ENCODINGS,
    BodyDecodeError,
    DecodeProblem,
    decompress,
)
from metrics_ingest.rollup.exposition import CONTENT_TYPE, render
from metrics_ingest.rollup.ingest import BadBody, IngestLimits, Rejected, parse_batch
from metrics_ingest.rollup.query import BadQuery, parse_query
from metrics_ingest.rollup.windows import Rollups
from opsmesh.clock import Clock
from opsmesh.kafka.producer import Outgoing
from opsmesh.labels import series_id
from opsmesh.topics import METRICS
from opsmesh.web.openapi import add_openapi_route


class Publisher(Protocol):
    """The producer port (``EventProducer.publish_batched``): the records of one request or
    batch published together; returns once the broker acknowledged all."""

    async def publish_batched(self, items: Sequence[Outgoing]) -> None: ...


@dataclass
class HttpApi:
    token: str | None
    limits: IngestLimits
    window_sizes: tuple[float, ...]
    rollups: Rollups
    clock: Clock
    registry: CollectorRegistry
    producer: Callable[[], Publisher]
    pool: Callable[[], AsyncConnectionPool]
    max_body_bytes: int = 8 * 1024 * 1024  # the app's client_max_size, for the document

    def __post_init__(self) -> None:
        self._samples = Counter(
            "metrics_ingest_http_samples",
            "Samples received over HTTP by outcome (accepted or the rejection reason)",
            ["outcome"],
            registry=self.registry,
        )
        self._requests = Counter(
            "metrics_ingest_http_requests",
            "POST /api/v1/metrics requests by status",
            ["status"],
            registry=self.registry,
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/metrics", self.ingest)
        app.router.add_post(REMOTE_WRITE, self._remote_write())
        events = EventIngest(
            self._body, self._answer, self._fail, self.producer, self.limits.max_samples
        )
        events.routes(app)
        app.router.add_get("/metrics/apps", self.apps)
        app.router.add_get("/api/v1/series", self.series)
        add_openapi_route(app, openapi_document(self.limits, self.max_body_bytes))

    def _remote_write(self) -> Callable[[web.Request], Awaitable[web.Response]]:
        # The same token, limits and producer as POST /api/v1/metrics.
        return remote_write_handler(
            token=self.token,
            limits=self.limits,
            max_body_bytes=self.max_body_bytes,
            clock=self.clock,
            registry=self.registry,
            producer=self.producer,
        )

    def _fail(self, status: int, reason: str, detail: str) -> web.Response:
        self._requests.labels(str(status)).inc()
        return web.json_response({"error": reason, "detail": detail}, status=status)

    async def _body(self, request: web.Request) -> bytes | web.Response:
        """The authenticated request's JSON body, decompressed within the size limit, or
        the answer that refuses it."""
        if self.token is None:
            return self._fail(503, "not_configured", "METRICS_INGEST_API_TOKEN is not set")
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(
            given[7:].encode(), self.token.encode()
        ):
            response = self._fail(401, "unauthorized", "a valid bearer token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ENCODINGS:
            return self._fail(415, "unsupported_encoding", f"{encoding}: use gzip or none")
        if request.content_type not in ("application/json", ""):
            return self._fail(415, "unsupported_media_type", "send application/json")
        try:
            # The app leaves Content-Encoding to us (auto_decompress=False): aiohttp's
            # size limit bounds the body as sent, decompress() the body it inflates to.
            raw = await request.read()
            return decompress(raw, encoding, self.max_body_bytes)
        except web.HTTPRequestEntityTooLarge as exc:
            return self._fail(413, "too_large", exc.text or "body too large")
        except RequestPayloadError as exc:  # a broken chunked body
            return self._fail(400, "unreadable_body", str(exc).strip()[:300])
        except BodyDecodeError as exc:
            status = 413 if exc.problem is DecodeProblem.TOO_LARGE else 400
            return self._fail(status, exc.problem.value, exc.detail)

    async def ingest(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        now = self.clock.now()
        try:
            parsed = parse_batch(body, now, self.limits)
        except BadBody as exc:
            status = 413 if exc.reason.value == "too_many_samples" else 400
            return self._fail(status, exc.reason.value, exc.detail)
        if parsed.samples:
            await self.producer().publish_batched(
                [Outgoing(METRICS, series_id(s.name, s.labels), s) for s in parsed.samples]
            )
            self._samples.labels("accepted").inc(len(parsed.samples))
        for rejected in parsed.rejected:
            self._samples.labels(rejected.reason.value).inc()
        return self._answer(len(parsed.samples), parsed.rejected)

    def _answer(self, accepted: int, rejected: Sequence[Rejected]) -> web.Response:
        status = 200 if not rejected else (202 if accepted else 400)
        self._requests.labels(str(status)).inc()
        return web.json_response(
            {
                "accepted": accepted,
                "rejected": [
                    {"index": r.index, "reason": r.reason.value, "detail": r.detail[:300]}
                    for r in rejected
                ],
            },
            status=status,
        )

    async def apps(self, _: web.Request) -> web.Response:
        text = render(self.rollups.latest.values())
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def series(self, request: web.Request) -> web.Response:
        try:
            query = parse_query(
                {k: v for k, v in request.query.items() if k != "match"},
                request.query.getall("match", []),
                now=self.clock.now(),
                window_sizes=self.window_sizes,
            )
        except BadQuery as exc:
            return web.json_response({"error": exc.reason.value, "detail": exc.detail}, status=400)
        result: dict[str, Any] = {
            "name": query.name,
            "start": query.start,
            "end": query.end,
            "step": query.step,
            "window_s": query.window_s,
            "series": await query_series(self.pool(), query),
        }
        return web.json_response(result)
