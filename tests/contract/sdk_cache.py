"""An application using the SDK's cache with a client, for the contract tests: what it
publishes is what an SDK cache really sends."""

from __future__ import annotations

import msgspec

from opsmesh.events import MetricSampled
from opsmesh_client.cache import Cache, Namespace
from opsmesh_client.cache import observed as cache_metrics
from opsmesh_client.cache.testing import FakeClock
from opsmesh_client.client import Client
from opsmesh_client.settings import load
from opsmesh_client.testing import MemoryTransports
from opsmesh_client.wire import Kind

MINUTE = 60.0
LOOKUPS_PER_MINUTE = 100


class Shop:
    """An application: an SDK client and a cache with a static namespace at the seed's
    95 % target, on a fake clock; each minute it looks up ``LOOKUPS_PER_MINUTE`` keys."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.made = MemoryTransports()
        self.client = Client(
            load({}, service="shop", kafka="unused:1", instance="web-1"),
            transport=self.made,
            clock=self.clock,
            start=False,
        )
        target = cache_metrics.STATIC_HIT_RATIO_TARGET
        self.cache = Cache(
            None,
            [Namespace("static", ttl_s=3600, hit_ratio_target=target)],
            clock=self.clock,
            client=self.client,
        )
        self.cache.set("logo.png", "<svg/>", namespace="static")

    def minute(self, hit_share: float) -> list[MetricSampled]:
        """A minute of lookups (``hit_share`` of them on the cached key), then the client's
        collection at its end: the samples as metrics-ingest decodes them."""
        hits = round(LOOKUPS_PER_MINUTE * hit_share)
        for i in range(LOOKUPS_PER_MINUTE):
            key = "logo.png" if i < hits else f"banner-{self.clock.now}-{i}.png"
            self.cache.get(key, namespace="static")
        self.clock.advance(MINUTE)
        self.made.transport.records.clear()
        assert self.client.flush()
        return [
            msgspec.json.decode(r.value(), type=MetricSampled)
            for r in self.made.transport.of(Kind.METRIC)
        ]

    def close(self) -> None:
        self.cache.close()
        self.client.close()
