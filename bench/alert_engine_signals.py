"""alert-engine's signal evaluation over Kafka, with the raw consume rate of the same topic.

Fills ``opsmesh.signals`` (8 partitions, keyed by series) with ``--signals`` rollup signals
(default 300,000) over 1,000 signal names x 20 services (20,000 series), then:

- baseline: raw aiokafka ``getmany`` + typed msgspec decode of ``SignalObserved`` (no
  group), in this process;
- engine: alert-engine as a process (``python -m alert_engine``, as deployed) with 1,000
  threshold rules, one per signal name, consuming the topic from the beginning through
  ``BatchConsumer`` → ``EvaluateStage`` → ``EngineState`` (PostgreSQL, Kafka, Redis). The
  rate is read from its ``/metrics``
  (``opsmesh_consumer_records_total{topic="opsmesh.signals",outcome="ok"}``), polled every
  100 ms, from the first poll that saw records to the poll that saw them all.

Steady state: ~99.5% of signals are below their rule's threshold and change nothing; the
rest cross it (pending → firing, ``for: 0s``) and the series' next signal resolves it, so
transitions, PostgreSQL writes, state events and notification requests happen throughout.
The bar in issue 3: at least 50,000 signals/s with 1,000 rules.

    uv run python -m bench.alert_engine_signals [--signals N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from bench.kafka_kit import raw_consume
from bench.profiling import start_profilers, stop_profilers
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.codec import encode
from opsmesh.topics import SIGNALS
from opsmesh_dev.infra import Endpoints, LocalStack
from opsmesh_dev.tools.mesh import Mesh

RULES = 1_000
SERVICES = 20
CROSSING = 0.005  # share of signals above their threshold
THRESHOLD = 0.9
BAR = 50_000
_OK = re.compile(
    r'^opsmesh_consumer_records_total\{(?=[^}]*topic="opsmesh\.signals")'
    r'(?=[^}]*outcome="ok")[^}]*\}\s+(\S+)$',
    re.MULTILINE,
)
_TRANSITIONS = re.compile(r'^alert_engine_transitions_total\{state="(\w+)"\}\s+(\S+)$', re.M)
_NOTIFY = re.compile(r"^alert_engine_notifications_requested_total\{[^}]*\}\s+(\S+)$", re.M)


def rules_yaml() -> str:
    lines = ["groups:", "  - name: bench", "    rules:"]
    for k in range(RULES):
        lines += [
            f"      - alert: BenchMetric{k:04d}High",
            f"        signal: bench_metric_{k:04d}",
            '        op: ">"',
            f"        threshold: {THRESHOLD}",
            "        labels: {severity: warning}",
            "        annotations:",
            '          summary: "{{ labels.service }} at {{ value }}"',
            "          runbook_url: runbooks/high-error-rate.md",
        ]
    return "\n".join(lines) + "\n"


async def fill(bootstrap: str, signals: int) -> tuple[float, int]:
    """Produce the signals (batch API, keyed by series); returns (signals/s, crossing)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        max_batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    rng = random.Random(7)
    partitions = SIGNALS.partitions
    batches = [producer.create_batch() for _ in range(partitions)]
    futures = []
    crossing = 0
    started = time.perf_counter()
    try:
        for i in range(signals):
            k = i % RULES
            service = f"svc-{(i // RULES) % SERVICES:02d}"
            labels = {"service": service, "env": "prod", "region": "eu-west-1"}
            above = rng.random() < CROSSING
            crossing += above
            value = 0.95 if above else rng.random() * 0.5
            window_end = 1_760_000_000.0 + i / 1000
            series = f'bench_metric_{k:04d}{{env="prod",region="eu-west-1",service="{service}"}}'
            value_bytes = encode(
                SignalObserved(
                    source=SignalSource.METRICS,
                    kind=SignalKind.ROLLUP,
                    name=f"bench_metric_{k:04d}",
                    subject=series,
                    labels=labels,
                    value=value,
                    stats={"count": 60.0, "sum": value * 60, "min": 0.0, "max": value},
                    window_start=window_end - 60,
                    window_end=window_end,
                    observed_at=window_end,
                )
            )
            key = series.encode()
            partition = zlib.crc32(key) % partitions
            batch = batches[partition]
            if batch.append(key=key, value=value_bytes, timestamp=None) is None:
                batch.close()
                futures.append(await producer.send_batch(batch, SIGNALS.name, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value_bytes, timestamp=None)
        for partition, batch in enumerate(batches):
            batch.close()
            futures.append(await producer.send_batch(batch, SIGNALS.name, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return signals / (time.perf_counter() - started), crossing


async def scrape(session: aiohttp.ClientSession, url: str) -> str | None:
    try:
        async with session.get(url) as response:
            return await response.text() if response.status == 200 else None
    except aiohttp.ClientError:
        return None


def _outcome(metrics: str) -> tuple[list[tuple[str, str]], list[str]]:
    return _TRANSITIONS.findall(metrics), _NOTIFY.findall(metrics)


async def settled_metrics(
    session: aiohttp.ClientSession,
    url: str,
    metrics: str,
    *,
    quiet_s: float = 1.0,
    timeout_s: float = 10.0,
) -> str:
    """The engine's metrics once the transition and notification counters have not moved
    for ``quiet_s`` (ten flush ticks: the last flushes have landed); bounded."""
    started = changed = time.perf_counter()
    while (now := time.perf_counter()) - changed < quiet_s and now - started < timeout_s:
        await asyncio.sleep(0.1)  # the metrics scrape interval of the measurement
        latest = await scrape(session, url)
        if latest is not None and _outcome(latest) != _outcome(metrics):
            metrics, changed = latest, time.perf_counter()
    return await scrape(session, url) or metrics


def consumed(metrics: str) -> float:
    return sum(float(v) for v in _OK.findall(metrics))


async def engine_consume(
    endpoints: Endpoints, workdir: Path, signals: int, profile: Path | None
) -> tuple[float, dict[str, float], float, float]:
    """Start alert-engine, watch its consumer counter; (signals/s, transitions, notifications,
    seconds from spawn to the first consumed record)."""
    rules = workdir / "rules.yml"
    rules.write_text(rules_yaml())
    mesh = Mesh(
        endpoints,
        workdir / "mesh",
        env={
            "alert-engine": {
                "ALERT_ENGINE_RULES_FILES": str(rules),
                "ALERT_ENGINE_GROUP_WAIT": "0s",
                "ALERT_ENGINE_GROUP_INTERVAL": "1s",
            }
        },
        common_env={"OPSMESH_LOG_LEVEL": "WARNING"},
    )
    url = f"http://127.0.0.1:{mesh.port('alert-engine')}/metrics"
    spawned = time.perf_counter()
    starting = asyncio.create_task(asyncio.to_thread(mesh.start, ["alert-engine"]))
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            first: tuple[float, float] | None = None
            last: tuple[float, float] = (0.0, 0.0)
            deadline = time.perf_counter() + 600
            metrics = ""
            while time.perf_counter() < deadline:
                if starting.done() and starting.exception() is not None:
                    raise starting.exception()  # type: ignore[misc]
                text = await scrape(session, url)
                now = time.perf_counter()
                if text is not None:
                    metrics = text
                    count = consumed(text)
                    if count > 0 and first is None:
                        first = (now, count)
                        profilers = start_profilers(mesh, profile, ["alert-engine"])
                    last = (now, count)
                    if count >= signals:
                        break
                await asyncio.sleep(0.1)  # the metrics scrape interval of the measurement
            else:
                raise TimeoutError(f"consumed {last[1]:,.0f} of {signals:,} in 600 s")
            metrics = await settled_metrics(session, url, metrics)
        await starting
        if first is None or last[0] <= first[0]:
            raise RuntimeError("the engine consumed everything between two polls; use more")
        rate = (last[1] - first[1]) / (last[0] - first[0])
        transitions = {state: float(v) for state, v in _TRANSITIONS.findall(metrics)}
        notifications = sum(float(v) for v in _NOTIFY.findall(metrics))
        return rate, transitions, notifications, first[0] - spawned
    finally:
        stop_profilers(profilers)
        if not starting.done():
            await asyncio.wait([starting])
        await asyncio.to_thread(mesh.stop_all)


async def run(endpoints: Endpoints, workdir: Path, signals: int, profile: Path | None) -> None:
    bootstrap = endpoints.kafka_bootstrap
    await ensure_topics({"bootstrap_servers": bootstrap})
    produced, crossing = await fill(bootstrap, signals)
    raw, _ = await raw_consume(bootstrap, SIGNALS.name, signals, SignalObserved, SIGNALS.partitions)
    rate, transitions, notifications, startup = await engine_consume(
        endpoints, workdir, signals, profile
    )
    print(
        f"alert-engine signal evaluation: {signals:,} SignalObserved on {SIGNALS.name}"
        f" ({SIGNALS.partitions} partitions), {RULES:,} threshold rules,"
        f" {RULES * SERVICES:,} series"
    )
    print(f"  produce (aiokafka batch API, acks=1): {produced:,.0f} signals/s")
    print(f"  baseline raw aiokafka getmany + msgspec typed decode: {raw:,.0f} signals/s")
    print(
        f"  alert-engine (process, BatchConsumer → EvaluateStage → EngineState):"
        f" {rate:,.0f} signals/s (first record {startup:.1f} s after spawn)"
    )
    print(f"  ratio engine / baseline: {rate / raw:.2f}")
    print(
        f"  signals over threshold: {crossing:,} ({crossing / signals:.2%});"
        f" transitions {', '.join(f'{k} {v:,.0f}' for k, v in sorted(transitions.items()))};"
        f" notification requests {notifications:,.0f}"
    )
    print(f"  bar >= {BAR:,} signals/s with {RULES:,} rules: {'met' if rate >= BAR else 'NOT met'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=300_000)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy alert-engine into this directory"
    )
    args = parser.parse_args(argv)
    # Fresh topics: the producer's retries while partition leaders are elected are noise.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-bench-signals-"))
    try:
        with LocalStack() as endpoints:
            asyncio.run(run(endpoints, workdir, args.signals, args.profile))
    finally:
        if args.keep:
            print(f"work directory: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
