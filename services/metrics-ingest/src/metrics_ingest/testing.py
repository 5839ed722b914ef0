"""Test doubles of metrics-ingest's ports, for its tests; no runtime module imports this."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from metrics_ingest.api import routes
from metrics_ingest.api.gate import HttpIngest
from metrics_ingest.bootstrap import SERVICES, Services
from metrics_ingest.pipeline.publisher import Publisher
from metrics_ingest.rollup.closed import ClosedWindow
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from opsmesh.clock import SystemClock
from opsmesh.kafka.producer import Outgoing


class MemoryHistory:
    """``History`` that keeps every window it is given."""

    def __init__(self) -> None:
        self.windows: list[ClosedWindow] = []

    async def store(self, windows: Sequence[ClosedWindow], now: float) -> int:
        self.windows.extend(windows)
        return 0


class MemoryPublisher:
    """``Publisher`` that keeps every record it is given, or raises ``failure`` (a broker
    that does not take them) while one is set."""

    def __init__(self) -> None:
        self.items: list[Outgoing] = []
        self.failure: Exception | None = None

    async def publish_batched(self, items: Sequence[Outgoing]) -> None:
        if self.failure is not None:
            raise self.failure
        self.items.extend(items)


def http_ingest(
    token: str,
    producer: Publisher,
    registry: CollectorRegistry,
    *,
    max_samples: int = 50,
    max_body_bytes: int = 8 * 1024 * 1024,
) -> HttpIngest:
    """The ingest gate for handler tests: no history (no pool), one 10 s window."""
    return HttpIngest(
        token=token,
        limits=IngestLimits(max_samples=max_samples),
        window_sizes=(10.0,),
        rollups=Rollups(WindowConfig((10.0,))),
        clock=SystemClock(),
        registry=registry,
        producer=producer,
        pool=None,
        max_body_bytes=max_body_bytes,
    )


def http_app(http: HttpIngest, **app_args: Any) -> web.Application:
    """An app serving metrics-ingest's HTTP API over ``http`` alone (no consumer), as the
    service serves it: Content-Encoding left to the ingest gate."""
    app = web.Application(
        client_max_size=http.max_body_bytes, handler_args={"auto_decompress": False}, **app_args
    )
    app[SERVICES] = Services(http=http, stage=None, maintenance=None)
    routes(http.limits, http.max_body_bytes)(app)
    return app
