"""What every ingest endpoint shares: the bearer token, the body (its media type, its
Content-Encoding undone within the size limit) and the answers, counted by status.

HTTP ingest publishes accepted records to their topic and answers once the broker has
acknowledged them (acks=all). Going through Kafka rather than straight into the rollups
keeps one path for every sample: the partition that owns a series owns its windows on
whichever replica holds it, and the offset/checkpoint machinery makes an acknowledged
sample durable across a crash. A direct hand-off would acknowledge samples held only in
one process's memory.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.pipeline.publisher import Publisher
from metrics_ingest.rollup.decompress import ENCODINGS, BodyDecodeError, DecodeProblem, decompress
from metrics_ingest.rollup.ingest import IngestLimits, Rejected
from metrics_ingest.rollup.windows import Rollups
from opsmesh.clock import Clock
from opsmesh.kafka.producer import Outgoing

# How long a client is asked to wait before sending again when the broker did not take a
# request's records (a broker restart or a leader election takes seconds).
RETRY_AFTER_S = 5


@dataclass
class HttpIngest:
    """What the HTTP handlers use (``Services.http``)."""

    token: str | None  # None: ingest answers 503 until METRICS_INGEST_API_TOKEN is set
    limits: IngestLimits
    window_sizes: tuple[float, ...]
    rollups: Rollups
    clock: Clock
    registry: CollectorRegistry
    producer: Publisher
    pool: AsyncConnectionPool | None  # None: no series queries (the ingest benchmark)
    max_body_bytes: int = 8 * 1024 * 1024  # the app's client_max_size, for the document
    samples: Counter = field(init=False)
    requests: Counter = field(init=False)
    remote_write_samples: Counter = field(init=False)  # POST /api/v1/write's own
    remote_write_requests: Counter = field(init=False)

    def __post_init__(self) -> None:
        self.samples = Counter(
            "metrics_ingest_http_samples",
            "Samples received over HTTP by outcome (accepted or the rejection reason)",
            ["outcome"],
            registry=self.registry,
        )
        self.requests = Counter(
            "metrics_ingest_http_requests",
            "POST /api/v1/metrics requests by status",
            ["status"],
            registry=self.registry,
        )
        self.remote_write_samples = Counter(
            "metrics_ingest_remote_write_samples",
            "Remote-write samples by outcome: accepted, a skip or a refusal reason",
            ["outcome"],
            registry=self.registry,
        )
        self.remote_write_requests = Counter(
            "metrics_ingest_remote_write_requests",
            "POST /api/v1/write requests by status",
            ["status"],
            registry=self.registry,
        )

    def fail(self, status: int, reason: str, detail: str) -> web.Response:
        self.requests.labels(str(status)).inc()
        return web.json_response({"error": reason, "detail": detail}, status=status)

    async def body(self, request: web.Request) -> bytes | web.Response:
        """The authenticated request's JSON body, decompressed within the size limit, or
        the answer that refuses it."""
        if self.token is None:
            return self.fail(503, "not_configured", "METRICS_INGEST_API_TOKEN is not set")
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(
            given[7:].encode(), self.token.encode()
        ):
            response = self.fail(401, "unauthorized", "a valid bearer token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ENCODINGS:
            return self.fail(415, "unsupported_encoding", f"{encoding}: use gzip or none")
        if request.content_type not in ("application/json", ""):
            return self.fail(415, "unsupported_media_type", "send application/json")
        try:
            # The app leaves Content-Encoding to us (auto_decompress=False): aiohttp's
            # size limit bounds the body as sent, decompress() the body it inflates to.
            raw = await request.read()
            return decompress(raw, encoding, self.max_body_bytes)
        except web.HTTPRequestEntityTooLarge as exc:
            return self.fail(413, "too_large", exc.text or "body too large")
        except RequestPayloadError as exc:  # a broken chunked body
            return self.fail(400, "unreadable_body", str(exc).strip()[:300])
        except BodyDecodeError as exc:
            status = 413 if exc.problem is DecodeProblem.TOO_LARGE else 400
            return self.fail(status, exc.problem.value, exc.detail)

    async def publish(self, records: Sequence[Outgoing]) -> web.Response | None:
        """Publish ``records`` and wait for the broker's acknowledgement: None once it has
        them, else the 503 (with Retry-After) that tells the client to send them again — a
        broker that is restarting or slow is transient, not the server's bug (a 500)."""
        try:
            await self.producer.publish_batched(records)
        except (KafkaError, TimeoutError) as exc:
            response = self.fail(
                503, "unavailable", f"the broker did not take them: {type(exc).__name__}"
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        return None

    def answer(self, accepted: int, rejected: Sequence[Rejected]) -> web.Response:
        status = 200 if not rejected else (202 if accepted else 400)
        self.requests.labels(str(status)).inc()
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
