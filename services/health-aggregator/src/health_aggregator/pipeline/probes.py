"""Running active probes: one task per probe, each result published as a health report.

Every probe reaches its target with a timeout; an exception is a failed result with its
reason, never a crashed task. Results go to the health topic keyed by service/instance,
so they are aggregated, expired and signalled like any report.

With several replicas, a probe runs on the replica that owns the health partition its
results land on (``ProbeShare``), so each target is probed once per interval, not once per
replica; a handover skips at most an interval or two, well within the three-interval TTL.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import psycopg
import redis.asyncio as aioredis
import yaml
from aiokafka.client import AIOKafkaClient
from prometheus_client import CollectorRegistry

from health_aggregator.core.probes import (
    Outcome,
    ProbeKind,
    ProbeSpec,
    connected,
    disk_outcome,
    failed,
    http_outcome,
    next_delay,
    parse_specs,
    to_report,
)
from health_aggregator.settings import HealthAggregatorSettings
from opsmesh.clock import Clock
from opsmesh.kafka.producer import EventProducer, Outgoing
from opsmesh.logging import get_logger
from opsmesh.periodic import FirstRun, Periodic, PeriodicMetrics, periodic_metrics
from opsmesh.runtime import Runtime
from opsmesh.topics import HEALTH, partition_for
from opsmesh.tracing.http import trace_outgoing
from opsmesh.tracing.spans import traced
from opsmesh.web.app import Worker
from opsmesh.yaml_errors import yaml_error_text

log = get_logger(__name__)
MAX_BODY = 64 * 1024


class ProbeShare:
    """The health partitions this replica consumes, kept by the health stage."""

    def __init__(self, partitions: int = HEALTH.partitions) -> None:
        self._partitions = partitions
        self._owned: set[int] = set()

    def assigned(self, partitions: set[int]) -> None:
        self._owned |= partitions

    def revoked(self, partitions: set[int]) -> None:
        self._owned -= partitions

    def runs_here(self, spec: ProbeSpec) -> bool:
        return partition_for(probe_key(spec), self._partitions) in self._owned


def probe_key(spec: ProbeSpec) -> str:
    return f"{spec.service}/{spec.instance}"


def load_specs(path: Path) -> list[ProbeSpec]:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        # PyYAML quotes the line, and a probe's target may carry credentials.
        raise ValueError(f"{path}: not valid YAML: {yaml_error_text(exc)}") from None
    return parse_specs(raw)


async def run_probe(spec: ProbeSpec, session: aiohttp.ClientSession | None = None) -> Outcome:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(spec.timeout_s):
            if spec.kind is ProbeKind.HTTP:
                return await _http(spec, session, started)
            if spec.kind is ProbeKind.DISK:
                usage = await asyncio.to_thread(shutil.disk_usage, spec.target)
                return disk_outcome(spec, 100.0 * usage.free / usage.total)
            await _CONNECT[spec.kind](spec)
    except TimeoutError:
        return failed(f"no answer within {spec.timeout_s:g}s", timed_out=True)
    except Exception as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    return connected(spec, (time.perf_counter() - started) * 1000)


async def _http(spec: ProbeSpec, session: aiohttp.ClientSession | None, started: float) -> Outcome:
    context: ssl.SSLContext | bool = True
    if spec.ca_file is not None:
        context = ssl.create_default_context(cafile=spec.ca_file)
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.get(spec.target, ssl=context, allow_redirects=False) as response:
            body = (await response.content.read(MAX_BODY)).decode(errors="replace")
            latency_ms = (time.perf_counter() - started) * 1000
            cert_days = await _cert_days(spec.target, context)
            return http_outcome(
                spec,
                status_code=response.status,
                latency_ms=latency_ms,
                body=body,
                cert_days=cert_days,
            )
    finally:
        if own:
            await client.close()


async def _cert_days(url: str, context: ssl.SSLContext | bool) -> float | None:
    """Days until the server certificate's notAfter, from a TLS handshake of its own
    (aiohttp releases a small response's connection before its certificate can be read)."""
    parsed = urlsplit(url)
    if parsed.scheme != "https" or parsed.hostname is None:
        return None
    tls = context if isinstance(context, ssl.SSLContext) else ssl.create_default_context()
    _, writer = await asyncio.open_connection(
        parsed.hostname, parsed.port or 443, ssl=tls, server_hostname=parsed.hostname
    )
    try:
        cert = writer.get_extra_info("peercert")
    finally:
        writer.close()
    if not cert or "notAfter" not in cert:
        return None
    return (ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()) / 86400.0


async def _tcp(spec: ProbeSpec) -> None:
    host, _, port = spec.target.rpartition(":")
    _, writer = await asyncio.open_connection(host or "127.0.0.1", int(port))
    writer.close()
    await writer.wait_closed()


async def _postgres(spec: ProbeSpec) -> None:
    async with await psycopg.AsyncConnection.connect(
        spec.target, connect_timeout=max(1, int(spec.timeout_s)), autocommit=True
    ) as conn:
        await conn.execute("SELECT 1")


async def _redis(spec: ProbeSpec) -> None:
    client = aioredis.from_url(spec.target, socket_timeout=spec.timeout_s)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _kafka(spec: ProbeSpec) -> None:
    client = AIOKafkaClient(
        bootstrap_servers=spec.target, request_timeout_ms=int(spec.timeout_s * 1000)
    )
    try:
        await client.bootstrap()
        await client.fetch_all_metadata()
    finally:
        await client.close()


_CONNECT: dict[ProbeKind, Callable[[ProbeSpec], Awaitable[None]]] = {
    ProbeKind.TCP: _tcp,
    ProbeKind.POSTGRES: _postgres,
    ProbeKind.REDIS: _redis,
    ProbeKind.KAFKA: _kafka,
}


async def probe_loop(
    spec: ProbeSpec,
    *,
    publish: Callable[[Outgoing], Awaitable[None]],
    clock: Clock,
    stop: asyncio.Event,
    jitter: float,
    rng: random.Random,
    session: aiohttp.ClientSession | None = None,
    runs_here: Callable[[ProbeSpec], bool] = lambda _: True,
    metrics: PeriodicMetrics | None = None,
) -> None:
    """Runs ``spec`` every interval (± jitter) until ``stop``, the first run at a random
    point of the first interval, so probes started together do not fire in lockstep."""
    draws = 0

    def until_next() -> float:
        nonlocal draws
        draws += 1
        if draws == 1:
            return spec.interval_s * rng.random()  # spread first runs over the interval
        return next_delay(spec.interval_s, jitter, rng.random())

    async def probe_once() -> None:
        if not runs_here(spec):
            return  # another replica owns where this probe's results land
        # Each run starts a trace: the probe request carries it (``traceparent``), and so
        # does its report, and what the report changes downstream.
        with traced(f"probe {spec.check}", attributes={"opsmesh.probe.service": spec.service}):
            outcome = await run_probe(spec, session)
            report = to_report(spec, outcome, clock.now())
            try:
                await publish(Outgoing(HEALTH, probe_key(spec), report))
            except Exception:
                log.exception("probe result not published", probe=spec.check, service=spec.service)

    await Periodic(
        f"probe {spec.service} {spec.check}",
        probe_once,
        until_next,
        # Without a registry (tests), failed runs are counted in one nobody reads.
        metrics or periodic_metrics(CollectorRegistry()),
        FirstRun.AFTER_INTERVAL,
    ).run(stop)


def probe_worker(
    specs: Sequence[ProbeSpec],
    settings: HealthAggregatorSettings,
    runtime: Runtime,
    share: ProbeShare,
) -> Worker:
    """The probes of ``specs`` this replica's share runs (``load_specs`` read them at build)."""

    async def work(stop: asyncio.Event) -> None:
        producer: EventProducer = runtime.producer
        rng = random.Random()  # noqa: S311 - jitter, not security
        async with aiohttp.ClientSession(middlewares=(trace_outgoing,)) as session:
            await asyncio.gather(
                *(
                    probe_loop(
                        spec,
                        publish=producer.publish,
                        clock=runtime.clock,
                        stop=stop,
                        jitter=settings.probe_jitter,
                        rng=rng,
                        session=session,
                        runs_here=share.runs_here,
                        metrics=periodic_metrics(runtime.registry),
                    )
                    for spec in specs
                )
            )

    log.info("active probes configured", probes=len(specs))
    return work
