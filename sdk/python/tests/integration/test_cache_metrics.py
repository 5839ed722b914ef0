"""A cache over real Redis, given a client that publishes to real Kafka: its lookups per
tier, its L1 evictions, its L2 and loader latencies and its hit-ratio margin arrive on the
metrics topic as the mesh's ``MetricSampled`` events, under the names the SDK declares."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from opsmesh.events import MetricSampled
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import METRICS, Topic
from opsmesh_client.cache import Cache, Namespace, RedisStore
from opsmesh_client.cache import observed as cache_metrics
from opsmesh_client.client import Client
from opsmesh_client.settings import load
from opsmesh_client.wire import Kind
from opsmesh_dev.infra import Endpoints
from tests.fixtures.kafka import read_all

pytestmark = pytest.mark.integration


def _latest(samples: list[MetricSampled], name: str, **labels: str) -> MetricSampled:
    mine = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert mine, f"no {name} {labels}"
    return max(mine, key=lambda s: s.sampled_at)


async def test_a_cache_with_a_client_publishes_its_figures_to_kafka(
    infra: Endpoints, cache_redis_url: str, unique: str
) -> None:
    metrics = Topic(f"test.sdk.cache.{unique}", METRICS.partitions, METRICS.key)
    await ensure_topics({"bootstrap_servers": infra.kafka_bootstrap}, [metrics])
    client = Client(
        load(
            {},
            service=f"shop-{unique}",
            instance="web-1",
            kafka=infra.kafka_bootstrap,
            topics={**dict(load({}, service="x", kafka="x").topics), Kind.METRIC: metrics.name},
        ),
        start=False,
    )
    namespace = Namespace("api", max_entries=5, hit_ratio_target=cache_metrics.API_HIT_RATIO_TARGET)
    cache = Cache(RedisStore(cache_redis_url), [namespace], prefix=f"t-{unique}", client=client)
    try:
        assert cache.tiers.subscribed.wait(10)  # L1 is used once invalidations can arrive
        for i in range(10):  # ten loads; L1 keeps five
            cache.get_or_set(f"user:{i}", lambda i=i: {"id": i}, namespace="api")
        for _ in range(cache_metrics.MIN_LOOKUPS):
            cache.get("user:9", namespace="api")  # L1
        cache.get("user:0", namespace="api")  # evicted from L1: L2 answers
        assert client.flush()
    finally:
        cache.close()
        client.close()

    records = await read_all(infra.kafka_bootstrap, metrics.name)
    decoded = [msgspec.json.decode(r.value, type=MetricSampled) for r in records]
    samples = [s for s in decoded if s.name in cache_metrics.METRIC_NAMES]
    assert {s.labels["service"] for s in samples} == {f"shop-{unique}"}

    def value(name: str, **labels: str) -> Any:
        return _latest(samples, name, **labels).value

    def count(name: str, **labels: str) -> Any:
        return _latest(samples, name, **labels).count

    assert value(cache_metrics.LOOKUPS, namespace="api", tier="l1", result="hit") == 100
    assert value(cache_metrics.LOOKUPS, namespace="api", tier="l1", result="miss") == 11
    assert value(cache_metrics.LOOKUPS, namespace="api", tier="l2", result="hit") == 1
    assert value(cache_metrics.LOOKUPS, namespace="api", tier="l2", result="miss") == 10
    # Five of the ten loaded values, then one more for "user:0" copied back from L2.
    assert value(cache_metrics.EVICTIONS, namespace="api", tier="l1") == 6
    assert value(cache_metrics.LOADS, namespace="api", result="ok") == 10
    assert count(cache_metrics.LATENCY, namespace="api", tier="origin", operation="load") == 10
    # Ten lookups and sets of the loaded values, one lookup of an evicted one.
    assert count(cache_metrics.LATENCY, namespace="api", tier="l2", operation="get") == 11
    assert count(cache_metrics.LATENCY, namespace="api", tier="l2", operation="set") == 10
    # 101 of 111 lookups hit: above the 80 % target.
    margin = _latest(samples, cache_metrics.HIT_RATIO_MARGIN, namespace="api")
    assert margin.value == pytest.approx(101 / 111 - cache_metrics.API_HIT_RATIO_TARGET)
    assert margin.labels["target"] == "0.8"
