"""``POST /api/v1/write``: Prometheus Remote-Write 1.0 into the metrics topic.

Every accepted sample is published as HTTP JSON ingest publishes one (a ``MetricSampled``
keyed by series, answered once the broker acknowledged it), so the rollups, the
cardinality guard and the signals apply to it unchanged. Same bearer token and body
limit as ``POST /api/v1/metrics``.

Answers as a Remote-Write sender expects: 204 when every sample was taken (stale markers
and NaN skipped); 4xx, which Prometheus does not retry, for a request or samples that
will never be accepted (the valid samples of a 400 are published first); 503, which it
retries with backoff, when the broker cannot take the samples now.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter

from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.remote_write import (
    CONTENT_TYPE,
    PROTO_MESSAGE,
    BadRequest,
    BodyProblem,
    Decoded,
    parse_write_request,
    unsnappy,
)
from opsmesh.clock import Clock
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import METRICS

PATH = "/api/v1/write"


class Publisher(Protocol):
    async def publish_batched(self, items: Sequence[Outgoing]) -> None: ...


@dataclass
class RemoteWrite:
    token: str | None
    limits: IngestLimits
    max_body_bytes: int
    clock: Clock
    registry: CollectorRegistry
    producer: Callable[[], Publisher]

    def __post_init__(self) -> None:
        self._samples = Counter(
            "metrics_ingest_remote_write_samples",
            "Remote-write samples by outcome: accepted, a skip or a refusal reason",
            ["outcome"],
            registry=self.registry,
        )
        self._requests = Counter(
            "metrics_ingest_remote_write_requests",
            "POST /api/v1/write requests by status",
            ["status"],
            registry=self.registry,
        )

    def _fail(self, status: int, reason: str, detail: str) -> web.Response:
        self._requests.labels(str(status)).inc()
        return web.json_response({"error": reason, "detail": detail}, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        refused = self._check_headers(request)
        if refused is not None:
            return refused
        try:
            raw = await request.read()  # bounded by the app's client_max_size
            decoded = parse_write_request(
                unsnappy(raw, self.max_body_bytes), self.clock.now(), self.limits
            )
        except web.HTTPRequestEntityTooLarge as exc:
            return self._fail(413, "too_large", exc.text or "body too large")
        except RequestPayloadError as exc:
            return self._fail(400, "unreadable_body", str(exc).strip()[:300])
        except BadRequest as exc:
            large = exc.problem in (BodyProblem.TOO_LARGE, BodyProblem.TOO_MANY_SAMPLES)
            return self._fail(413 if large else 400, exc.problem.value, exc.detail)
        if decoded.samples:
            try:
                await self.producer().publish_batched(
                    [Outgoing(METRICS, key, sample) for key, sample in decoded.samples]
                )
            except (KafkaError, TimeoutError, RuntimeError) as exc:
                # RuntimeError: the producer is not open yet (the service is starting).
                response = self._fail(503, "unavailable", f"the broker did not take them: {exc}")
                response.headers["Retry-After"] = "5"
                return response
        return self._answer(decoded)

    def _check_headers(self, request: web.Request) -> web.Response | None:
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
        if encoding != "snappy":
            return self._fail(415, "unsupported_encoding", f"{encoding!r}: send snappy")
        if request.content_type != CONTENT_TYPE:
            return self._fail(415, "unsupported_media_type", f"send {CONTENT_TYPE}")
        # Remote-Write 2.0 names its message; a 415 tells such a sender to fall back to 1.0.
        proto = request.headers.get("Content-Type", "").partition("proto=")[2].strip()
        if proto and proto.split(";")[0].strip() != PROTO_MESSAGE:
            return self._fail(415, "unsupported_message", f"{proto}: send {PROTO_MESSAGE}")
        return None

    def _answer(self, decoded: Decoded) -> web.Response:
        accepted = len(decoded.samples)
        if accepted:
            self._samples.labels("accepted").inc(accepted)
        for outcome, count in (*decoded.skipped.items(), *decoded.refused.items()):
            self._samples.labels(outcome.value).inc(count)
        if not decoded.refused:
            self._requests.labels("204").inc()
            return web.Response(status=204)
        refused = ", ".join(f"{r.value}={n}" for r, n in sorted(decoded.refused.items()))
        self._requests.labels("400").inc()
        return web.json_response(
            {
                "error": "samples_refused",
                "detail": f"{accepted} accepted; refused: {refused}; "
                + "; ".join(decoded.examples),
                "accepted": accepted,
                "refused": {r.value: n for r, n in decoded.refused.items()},
            },
            status=400,
        )


def remote_write_handler(
    *,
    token: str | None,
    limits: IngestLimits,
    max_body_bytes: int,
    clock: Clock,
    registry: CollectorRegistry,
    producer: Callable[[], Publisher],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The route's handler, for the route table: ``add_post(PATH, remote_write_handler(...))``."""
    return RemoteWrite(token, limits, max_body_bytes, clock, registry, producer).handle
