"""The notifier, end to end: Kafka → notifier (a process, as deployed) → a local webhook sink.

``uv run python -m bench.notifier [throughput_requests] [rate_per_s] [phase_s]``

1. Throughput: ``throughput_requests`` requests (default 20,000) spread over ten
   webhook destinations are put in the topic first; the notifier is started and the
   sink counts deliveries per second from the first to the last.
2. Isolation: a steady ``rate_per_s`` (default 500/s) over the ten destinations for
   ``phase_s`` seconds (default 30) as a baseline, then again with one destination
   stalled (the sink holds its requests) for the whole phase. Prints the other nine's
   p50/p99 delivery latency (publish → received by the sink) for both phases.

The sink and the producer share this process; the notifier runs in its own. On a
2-core machine shared with other work the figures are noisy: run it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from notifier.samples import sample_request
from opsmesh.db.migrations import apply_all
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import ALL_TOPICS, NOTIFICATIONS, Topic
from opsmesh_dev.infra import Endpoints, LocalStack
from opsmesh_dev.tools.mesh import Mesh

DESTINATIONS = 10
STALLED = "d0"


class Sink:
    def __init__(self) -> None:
        self.received: dict[str, float] = {}  # webhook-id -> first receipt (monotonic)
        self.count = 0
        self.stalled = False
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()  # set on every receipt
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            await request.read()
            dest = request.match_info["dest"]
            if dest == STALLED and self.stalled:
                await self.release.wait()
            key = request.headers.get("webhook-id", "")
            self.received.setdefault(key, time.monotonic())
            self.count += 1
            self.arrived.set()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook/{dest}", hook)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Wait for receipts until ``done()``; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not done():
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), timeout=min(remaining, 1.0))
        return True

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


def receivers_file(directory: Path, sink: Sink) -> Path:
    lines = ["receivers:"]
    for i in range(DESTINATIONS):
        lines += [f"  - name: d{i}", f'    webhook_configs: [{{url: "{sink.url}/hook/d{i}"}}]']
    path = directory / "receivers.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def throughput(producer: EventProducer, topic: Topic, sink: Sink, mesh: Mesh, n: int) -> None:
    prefix = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    batch: list[Outgoing] = []
    for i in range(n):
        request = sample_request(f"d{i % DESTINATIONS}", key=f"tp-{prefix}-{i}")
        batch.append(Outgoing(topic, request.idempotency_key, request))
        if len(batch) == 1000:
            await producer.publish_many(batch)
            batch = []
    await producer.publish_many(batch)
    print(f"throughput: {n} requests in the topic in {time.perf_counter() - started:.1f}s")
    await asyncio.to_thread(mesh.start, ["notifier"])
    pid = mesh.running["notifier"].process.pid
    await sink.until(lambda: sink.count > 0, 60)
    first = time.monotonic()
    cpu_first = _cpu_seconds(pid)
    await sink.until(lambda: sink.count >= n, 120)
    cpu = _cpu_seconds(pid) - cpu_first
    elapsed = max(sink.received.values()) - first
    delivered = len([k for k in sink.received if k.startswith(f"tp-{prefix}")])
    print(
        f"throughput: {delivered}/{n} delivered in {elapsed:.2f}s = "
        f"{delivered / elapsed:,.0f} webhook deliveries/s (first to last receipt); the notifier"
        f" used {cpu:.1f} CPU-s = {delivered / cpu:,.0f} deliveries per CPU-second"
        f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to see past a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def steady(
    producer: EventProducer, topic: Topic, sink: Sink, *, rate: int, seconds: float, label: str
) -> list[float]:
    prefix = f"{label}-{uuid.uuid4().hex[:8]}"
    sent: dict[str, tuple[str, float]] = {}
    tick = 0.02
    per_tick = max(1, round(rate * tick))
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        due = start + (i // per_tick) * tick
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)  # pacing the producer, not synchronisation
        batch = []
        for _ in range(per_tick):
            dest = f"d{i % DESTINATIONS}"
            key = f"{prefix}-{i}"
            batch.append(Outgoing(topic, key, sample_request(dest, key=key)))
            sent[key] = (dest, time.monotonic())
            i += 1
        await producer.publish_many(batch)
    # Let the healthy destinations drain before measuring.
    healthy = {k for k, (d, _) in sent.items() if d != STALLED}
    await sink.until(lambda: healthy <= sink.received.keys(), 30)
    latencies = [(sink.received[k] - sent[k][1]) * 1000 for k in healthy if k in sink.received]
    missing = len(healthy) - len(latencies)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"{label}: {i} requests at {rate}/s over {seconds:.0f}s; the nine healthy destinations:"
        f" p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
        + (f", {missing} not delivered" if missing else "")
    )
    return latencies


async def run(endpoints: Endpoints, n: int, rate: int, seconds: float) -> None:
    connection = {"bootstrap_servers": endpoints.kafka_bootstrap}
    await ensure_topics(connection, ALL_TOPICS)
    await apply_all(endpoints.pg_dsn)
    topic = Topic(f"bench.notifier.{uuid.uuid4().hex[:8]}", 8, NOTIFICATIONS.key)
    await ensure_topics(connection, [topic])
    sink = Sink()
    await sink.start()
    producer = EventProducer(connection, source="/bench/notifier")
    await producer.start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-notifier-"))
    mesh = Mesh(
        endpoints,
        workdir,
        env={
            "notifier": {
                "NOTIFIER_RECEIVERS_FILE": str(receivers_file(workdir, sink)),
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
                "NOTIFIER_REQUESTS_TOPIC": topic.name,
                "NOTIFIER_CONSUMER_GROUP": f"bench.{topic.name}",
                "OPSMESH_LOG_LEVEL": "WARNING",
            }
        },
    )
    try:
        await throughput(producer, topic, sink, mesh, n)
        # A short untimed phase first: the throughput phase's results and rows are still
        # settling into Kafka and PostgreSQL, which would colour the baseline.
        await steady(producer, topic, sink, rate=rate, seconds=5, label="warm-up")
        base = await steady(producer, topic, sink, rate=rate, seconds=seconds, label="baseline")
        sink.stalled = True
        stalled = await steady(
            producer, topic, sink, rate=rate, seconds=seconds, label=f"{STALLED}-stalled"
        )
        sink.stalled = False
        sink.release.set()
        p99 = base[int(len(base) * 0.99) - 1]
        p99_stalled = stalled[int(len(stalled) * 0.99) - 1]
        print(
            f"isolation: p99 of the nine healthy destinations {p99:.1f} ms → {p99_stalled:.1f} ms"
            f" with {STALLED} stalled for {seconds:.0f}s (rise {p99_stalled - p99:+.1f} ms;"
            " target < 100 ms)"
        )
    finally:
        await asyncio.to_thread(mesh.stop_all)
        await producer.stop()
        await sink.stop()
        print(f"notifier log: {workdir / 'notifier.log'}")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    with LocalStack() as endpoints:
        asyncio.run(run(endpoints, n, rate, seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
