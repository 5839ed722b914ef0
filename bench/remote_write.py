"""metrics-ingest's Prometheus remote write beside its HTTP JSON ingest.

``uv run python -m bench.remote_write [requests] [per_request] [clients]`` starts its own
Kafka, PostgreSQL and Redis (``LocalStack``) and posts the same samples (counters of
1,000 series, 64 services x 500 hosts labels, the shape of ``bench.metrics_ingest``'s
HTTP phase) to the real app handlers, publishing to Kafka with acks=all:

1. in process, no HTTP or Kafka: the decode alone (JSON; snappy + protobuf), each to the
   ``MetricSampled`` records, per sample (best of 20 rounds);
2. ``POST /api/v1/metrics``: JSON batches;
3. ``POST /api/v1/write``: the same batches as snappy-compressed ``WriteRequest``s (one
   series per sample, as Prometheus sends a scrape's samples), with each body's size.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import aiohttp
import cramjam
import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry

from metrics_ingest.api.gate import HttpIngest
from metrics_ingest.rollup.ingest import IngestLimits, parse_batch
from metrics_ingest.rollup.remote_write import parse_write_request, unsnappy
from metrics_ingest.rollup.remote_write_proto import Label, Sample, TimeSeries, WriteRequest
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import http_app
from opsmesh.clock import SystemClock
from opsmesh.kafka import EventProducer
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import ALL_TOPICS
from opsmesh_dev.infra import LocalStack

TOKEN = "bench-token"


def bodies(per_request: int, now: float) -> tuple[bytes, bytes]:
    """The same samples as a JSON batch and as a snappy-compressed WriteRequest."""
    labels = [
        {"service": f"svc-{i % 64}", "host": f"host-{i % 500:03d}"} for i in range(per_request)
    ]
    json_body = msgspec.json.encode(
        {
            "samples": [
                {
                    "name": "http_requests_total",
                    "kind": "counter",
                    "value": i,
                    "labels": labels[i],
                    "sampled_at": now,
                }
                for i in range(per_request)
            ]
        }
    )
    write = WriteRequest(
        timeseries=[
            TimeSeries(
                labels=[
                    Label(name="__name__", value="http_requests_total"),
                    *(Label(name=k, value=v) for k, v in labels[i].items()),
                ],
                samples=[Sample(value=i, timestamp=int(now * 1000))],
            )
            for i in range(per_request)
        ]
    )
    return json_body, bytes(cramjam.snappy.compress_raw(write.SerializeToString()))


async def warm_up(url: str, body: bytes, headers: dict[str, str], timeout_s: float = 120) -> None:
    """Post until one is taken: a new topic's partitions need leaders first (the broker
    answers NotLeaderForPartition until then, more so on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status in (200, 204):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")
            await asyncio.sleep(1)  # a retry interval, not a synchronisation


# A sender that gets a 503 sends the same batch again after the server's Retry-After, as
# Prometheus's remote write does with 5xx (it backs off); a batch is given up after these.
MAX_ATTEMPTS = 10


async def post_all(
    port: int, path: str, body: bytes, headers: dict[str, str], *, requests: int, clients: int
) -> tuple[float, int]:
    """Seconds for ``requests`` posts of ``body`` from ``clients`` concurrent clients, and
    how many 503s (each retried after its Retry-After) they met on the way."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    retried = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal retried
        while not queue.empty():
            queue.get_nowait()
            for _ in range(MAX_ATTEMPTS):
                async with session.post(
                    f"http://127.0.0.1:{port}{path}", data=body, headers=headers
                ) as response:
                    if response.status in (200, 204):
                        break
                    assert response.status == 503, await response.text()
                    retried += 1
                    # The server's own answer says when: a retry interval, not a sync.
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            else:
                raise RuntimeError(f"{path}: a batch refused {MAX_ATTEMPTS} times")

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        return time.perf_counter() - started, retried


def per_sample_us(decode: Callable[[], int], rounds: int = 20) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        samples = decode()
        best = min(best, (time.perf_counter() - started) / samples)
    return best * 1e6


async def run(bootstrap: str, requests: int, per_request: int, clients: int) -> None:
    await ensure_topics({"bootstrap_servers": bootstrap}, ALL_TOPICS)
    producer = EventProducer(
        {"bootstrap_servers": bootstrap}, source="/bench", partition_cache=1_000_000
    )
    await producer.start()
    limits = IngestLimits(max_samples=per_request)
    api = HttpIngest(
        token=TOKEN,
        limits=limits,
        window_sizes=(10.0, 60.0),
        rollups=Rollups(WindowConfig()),
        clock=SystemClock(),
        registry=CollectorRegistry(),
        producer=producer,
        pool=None,
    )
    runner = web.AppRunner(http_app(api), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    now = time.time()
    json_body, rw_body = bodies(per_request, now)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    json_us = per_sample_us(lambda: len(parse_batch(json_body, now, limits).samples))
    rw_us = per_sample_us(
        lambda: len(parse_write_request(unsnappy(rw_body, 1 << 26), now, limits).samples)
    )
    print(f"  decode only, per sample: JSON {json_us:.2f} µs, remote write {rw_us:.2f} µs")
    try:
        # A warm-up each (warm_up): topic metadata, leaders and partition cache ready.
        for path, body, headers in (
            ("/api/v1/metrics", json_body, {**auth, "Content-Type": "application/json"}),
            (
                "/api/v1/write",
                rw_body,
                {
                    **auth,
                    "Content-Type": "application/x-protobuf",
                    "Content-Encoding": "snappy",
                },
            ),
        ):
            await warm_up(f"http://127.0.0.1:{port}{path}", body, headers)
            elapsed, retried = await post_all(
                port, path, body, headers, requests=requests, clients=clients
            )
            print(
                f"  {path}: {requests * per_request / elapsed:,.0f} samples/s "
                f"({requests} x {per_request:,}-sample batches, {clients} clients, acks=all;"
                f" body {len(body):,} bytes; {retried} batches retried after a 503)"
            )
    finally:
        await runner.cleanup()
        await producer.stop()


def main() -> int:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    per_request = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    print("metrics-ingest HTTP ingest: JSON vs Prometheus remote write")
    with LocalStack() as endpoints:
        asyncio.run(run(endpoints.kafka_bootstrap, requests, per_request, clients))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
