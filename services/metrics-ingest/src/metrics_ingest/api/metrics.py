"""``POST /api/v1/metrics``: samples over HTTP, published to the metrics topic keyed by
series; ``GET /metrics/apps``: the latest windows in Prometheus' text format."""

from __future__ import annotations

from aiohttp import web

from metrics_ingest.bootstrap import SERVICES
from metrics_ingest.rollup.exposition import CONTENT_TYPE, render
from metrics_ingest.rollup.ingest import BadBody, parse_batch
from opsmesh.kafka.producer import Outgoing
from opsmesh.labels import series_id
from opsmesh.topics import METRICS


async def ingest(request: web.Request) -> web.Response:
    http = request.app[SERVICES].http
    body = await http.body(request)
    if isinstance(body, web.Response):
        return body
    try:
        parsed = parse_batch(body, http.clock.now(), http.limits)
    except BadBody as exc:
        status = 413 if exc.reason.value == "too_many_samples" else 400
        return http.fail(status, exc.reason.value, exc.detail)
    if parsed.samples:
        refused = await http.publish(
            [Outgoing(METRICS, series_id(s.name, s.labels), s) for s in parsed.samples]
        )
        if refused is not None:
            return refused
        http.samples.labels("accepted").inc(len(parsed.samples))
    for rejected in parsed.rejected:
        http.samples.labels(rejected.reason.value).inc()
    return http.answer(len(parsed.samples), parsed.rejected)


async def apps(request: web.Request) -> web.Response:
    text = render(request.app[SERVICES].http.rollups.latest.values())
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})
