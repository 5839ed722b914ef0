"""health-aggregator under fleet load: heartbeats, missing-heartbeat detection, /health/.

``uv run python -m bench.health_aggregator [instances] [seconds]`` starts its own Kafka,
PostgreSQL and Redis (``LocalStack``) and runs health-aggregator as a process, exactly as
deployed (``python -m health_aggregator``). Then, from this process:

- ``instances`` instances (default 10,000 over 100 services) heartbeat every 10 s with a
  15 s TTL, spread evenly (1,000 reports/s), one warm-up round first;
- 20 instances stop; the delay from each one's last heartbeat to its ``ttl_expired``
  signal must stay within TTL + 1 s;
- 4 concurrent clients GET ``/health/`` throughout; p50/p99/max latency is reported.

Everything shares the 2-core machine (broker, PostgreSQL, the service, the load), so
figures are lower bounds of what the service does alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from opsmesh.db.migrations import apply_all
from opsmesh.events import HealthReported, HealthStatus, SignalObserved
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import HEALTH, SIGNALS
from opsmesh_dev.infra import LocalStack
from opsmesh_dev.tools.mesh import Mesh

INTERVAL_S = 10.0
TTL_S = 15.0
STOPPED = 20


async def heartbeats(  # noqa: PLR0917
    producer: EventProducer,
    instances: list[tuple[str, str]],
    until: float,
    stopped: set[tuple[str, str]],
    stop_at: float,
    last_beat: dict[tuple[str, str], float],
) -> int:
    """Each instance beats every INTERVAL_S, offset by its index; ticks of 100 ms."""
    sent = 0
    per_tick = max(1, round(len(instances) * 0.1 / INTERVAL_S))
    cursor = 0
    next_tick = time.monotonic()
    while time.monotonic() < until:
        now = time.time()
        batch = []
        for _ in range(per_tick):
            key = instances[cursor % len(instances)]
            cursor += 1
            if key in stopped and now >= stop_at:
                continue
            service, instance = key
            last_beat[key] = now
            batch.append(
                Outgoing(
                    HEALTH,
                    f"{service}/{instance}",
                    HealthReported(
                        service=service,
                        instance=instance,
                        status=HealthStatus.PASS,
                        ttl_s=TTL_S,
                        reported_at=now,
                    ),
                )
            )
        await producer.publish_many(batch)
        sent += len(batch)
        next_tick += 0.1
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    return sent


async def probe_health(
    url: str, until: float, latencies: list[float], codes: dict[int, int]
) -> None:
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                codes[response.status] = codes.get(response.status, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)  # paces the probe load at ~100 requests/s


async def watch_expiry(
    bootstrap: str,
    stopped: set[tuple[str, str]],
    seen: dict[tuple[str, str], float],
    watching: asyncio.Event,
) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(SIGNALS.name, p) for p in range(SIGNALS.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now: later signals are all read
            await consumer.position(tp)
        watching.set()
        while len(seen) < len(stopped):
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for message in messages:
                    signal = msgspec.json.decode(message.value, type=SignalObserved)
                    key = (signal.labels.get("service", ""), signal.labels.get("instance", ""))
                    if key in stopped and signal.labels.get("cause") == "ttl_expired":
                        seen.setdefault(key, message.timestamp / 1000)
    finally:
        await consumer.stop()


async def run(mesh: Mesh, bootstrap: str, count: int, seconds: float) -> None:
    url = f"{mesh.running['health-aggregator'].url}/health/"
    instances = [(f"svc-{i % 100:03d}", f"i-{i:05d}") for i in range(count)]
    stopped = set(instances[:: max(1, count // STOPPED)][:STOPPED])
    producer = EventProducer({"bootstrap_servers": bootstrap}, source="/bench", linger_ms=20)
    await producer.start()
    last_beat: dict[tuple[str, str], float] = {}
    try:
        print(f"warm-up: one {INTERVAL_S:g} s round of {count:,} heartbeats")
        await heartbeats(producer, instances, time.monotonic() + INTERVAL_S, set(), 0.0, last_beat)
        seen: dict[tuple[str, str], float] = {}
        watching = asyncio.Event()
        watcher = asyncio.create_task(watch_expiry(bootstrap, stopped, seen, watching))
        await watching.wait()  # the watcher is at the end before anything can expire
        latencies: list[float] = []
        codes: dict[int, int] = {}
        until = time.monotonic() + seconds
        stop_at = time.time() + 2.0
        load = asyncio.create_task(
            heartbeats(producer, instances, until, stopped, stop_at, last_beat)
        )
        probes = [asyncio.create_task(probe_health(url, until, latencies, codes)) for _ in range(4)]
        sent = await load
        await asyncio.gather(*probes)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher, timeout=TTL_S + 10)
    finally:
        await producer.stop()
    delays = sorted(seen[k] - last_beat[k] for k in seen)
    latencies.sort()

    def p(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    print(
        f"health-aggregator: {count:,} instances, heartbeat every {INTERVAL_S:g} s, TTL {TTL_S:g} s"
    )
    print(f"  heartbeats sent during the run: {sent:,} in {seconds:g} s ({sent / seconds:,.0f}/s)")
    print(
        f"  stopped instances reported failed: {len(seen)}/{len(stopped)}; delay after the last "
        f"beat: min {delays[0] if delays else float('nan'):.2f} s, max "
        f"{delays[-1] if delays else float('nan'):.2f} s (bar: TTL + 1 = {TTL_S + 1:g} s)"
    )
    print(
        f"  GET /health/ under load: {len(latencies):,} requests, statuses {codes}, "
        f"p50 {statistics.median(latencies):.2f} ms, p99 {p(0.99):.2f} ms, "
        f"max {latencies[-1]:.2f} ms"
    )


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    with LocalStack() as endpoints:
        asyncio.run(ensure_topics({"bootstrap_servers": endpoints.kafka_bootstrap}))
        asyncio.run(apply_all(endpoints.pg_dsn))
        mesh = Mesh(endpoints, Path(tempfile.mkdtemp(prefix="bench-health-")))
        mesh.start(["health-aggregator"])
        try:
            asyncio.run(run(mesh, endpoints.kafka_bootstrap, count, seconds))
        finally:
            mesh.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
