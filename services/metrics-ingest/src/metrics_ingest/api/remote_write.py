"""``POST /api/v1/write``: Prometheus Remote-Write 1.0 into the metrics topic.

Every accepted sample is published as ``POST /api/v1/metrics`` publishes one (a
``MetricSampled`` keyed by series, answered once the broker acknowledged it), so the
rollups, the cardinality guard and the signals apply to it unchanged. Same bearer token
and body limit (``api.gate.HttpIngest``); its own media type, encoding and counters.

Answers as a Remote-Write sender expects: 204 when every sample was taken (stale markers
and NaN skipped); 4xx, which Prometheus does not retry, for a request or samples that
will never be accepted (the valid samples of a 400 are published first); 503, which it
retries with backoff, when the broker cannot take the samples now.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from aiokafka.errors import KafkaError

from metrics_ingest.api.gate import HttpIngest
from metrics_ingest.bootstrap import SERVICES
from metrics_ingest.rollup.remote_write import (
    CONTENT_TYPE,
    PROTO_MESSAGE,
    BadRequest,
    BodyProblem,
    Decoded,
    parse_write_request,
    unsnappy,
)
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import METRICS

PATH = "/api/v1/write"


def _fail(http: HttpIngest, status: int, reason: str, detail: str) -> web.Response:
    http.remote_write_requests.labels(str(status)).inc()
    return web.json_response({"error": reason, "detail": detail}, status=status)


async def write(request: web.Request) -> web.Response:
    http = request.app[SERVICES].http
    refused = _check_headers(http, request)
    if refused is not None:
        return refused
    try:
        raw = await request.read()  # bounded by the app's client_max_size
        decoded = parse_write_request(
            unsnappy(raw, http.max_body_bytes), http.clock.now(), http.limits
        )
    except web.HTTPRequestEntityTooLarge as exc:
        return _fail(http, 413, "too_large", exc.text or "body too large")
    except RequestPayloadError as exc:
        return _fail(http, 400, "unreadable_body", str(exc).strip()[:300])
    except BadRequest as exc:
        large = exc.problem in (BodyProblem.TOO_LARGE, BodyProblem.TOO_MANY_SAMPLES)
        return _fail(http, 413 if large else 400, exc.problem.value, exc.detail)
    if decoded.samples:
        try:
            await http.producer.publish_batched(
                [Outgoing(METRICS, key, sample) for key, sample in decoded.samples]
            )
        except (KafkaError, TimeoutError) as exc:
            response = _fail(http, 503, "unavailable", f"the broker did not take them: {exc}")
            response.headers["Retry-After"] = "5"
            return response
    return _answer(http, decoded)


def _check_headers(http: HttpIngest, request: web.Request) -> web.Response | None:
    if http.token is None:
        return _fail(http, 503, "not_configured", "METRICS_INGEST_API_TOKEN is not set")
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or not hmac.compare_digest(
        given[7:].encode(), http.token.encode()
    ):
        response = _fail(http, 401, "unauthorized", "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding != "snappy":
        return _fail(http, 415, "unsupported_encoding", f"{encoding!r}: send snappy")
    if request.content_type != CONTENT_TYPE:
        return _fail(http, 415, "unsupported_media_type", f"send {CONTENT_TYPE}")
    # Remote-Write 2.0 names its message; a 415 tells such a sender to fall back to 1.0.
    proto = request.headers.get("Content-Type", "").partition("proto=")[2].strip()
    if proto and proto.split(";")[0].strip() != PROTO_MESSAGE:
        return _fail(http, 415, "unsupported_message", f"{proto}: send {PROTO_MESSAGE}")
    return None


def _answer(http: HttpIngest, decoded: Decoded) -> web.Response:
    accepted = len(decoded.samples)
    if accepted:
        http.remote_write_samples.labels("accepted").inc(accepted)
    for outcome, count in (*decoded.skipped.items(), *decoded.refused.items()):
        http.remote_write_samples.labels(outcome.value).inc(count)
    if not decoded.refused:
        http.remote_write_requests.labels("204").inc()
        return web.Response(status=204)
    refused = ", ".join(f"{r.value}={n}" for r, n in sorted(decoded.refused.items()))
    http.remote_write_requests.labels("400").inc()
    return web.json_response(
        {
            "error": "samples_refused",
            "detail": f"{accepted} accepted; refused: {refused}; " + "; ".join(decoded.examples),
            "accepted": accepted,
            "refused": {r.value: n for r, n in decoded.refused.items()},
        },
        status=400,
    )
