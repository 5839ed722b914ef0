"""One probe per part of the mesh, each bounded by a timeout and answering a
``CheckResult``: a part that is down, slow or wrong is a failed check with the reason, never
an exception out of the run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psycopg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from psycopg.conninfo import conninfo_to_dict

from opsmesh.healthcheck.report import CheckResult, Status
from opsmesh.kafka.aiokafka_internals import cluster_metadata
from opsmesh.topics import ALL_TOPICS, DLQ

# A consumer group of the mesh: the services name theirs opsmesh.<service>[.<role>].
MESH_GROUP_PREFIX = "opsmesh."
BODY_SHOWN = 300  # characters of a failing readiness answer shown in its detail

Outcome = tuple[Status, str]


async def timed(
    check: str, target: str, probe: Callable[[], Awaitable[Outcome]], timeout_s: float
) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            status, detail = await probe()
    except TimeoutError:
        status, detail = Status.FAIL, f"no answer within {timeout_s:g} s"
    # Whatever a part answers with (refused connection, protocol error, bad credentials),
    # the run goes on and the check says what it was.
    except Exception as exc:
        status, detail = Status.FAIL, f"{type(exc).__name__}: {exc}".strip()
    return CheckResult(check, target, status, detail, time.perf_counter() - started)


def service_probe(http: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[Outcome]]:
    async def probe() -> Outcome:
        async with http.get(f"{url.rstrip('/')}/health/ready") as answer:
            body = (await answer.text())[:BODY_SHOWN]
            if answer.status == 200:
                return Status.OK, "ready"
            return Status.FAIL, f"HTTP {answer.status}: {' '.join(body.split())}"

    return probe


async def _started(connection: Mapping[str, Any]) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(**connection, enable_auto_commit=False)
    try:
        await consumer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise
    return consumer


def broker_probe(connection: Mapping[str, Any]) -> Callable[[], Awaitable[Outcome]]:
    async def probe() -> Outcome:
        consumer = await _started(connection)
        try:
            cluster = await cluster_metadata(consumer)
            brokers = len(cluster.brokers())
            missing = sorted(t.name for t in ALL_TOPICS if not cluster.partitions_for_topic(t.name))
        finally:
            await consumer.stop()
        if missing:
            return Status.FAIL, f"{brokers} broker(s); topics missing: {', '.join(missing)}"
        return Status.OK, f"{brokers} broker(s), {len(ALL_TOPICS)} topics"

    return probe


def database_target(dsn: str) -> str:
    """host:port/dbname, never the password."""
    parts = conninfo_to_dict(dsn)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def database_probe(dsn: str) -> Callable[[], Awaitable[Outcome]]:
    async def probe() -> Outcome:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            cursor = await conn.execute("SELECT current_setting('server_version')")
            row = await cursor.fetchone()
        return Status.OK, f"PostgreSQL {row[0] if row else '?'}"

    return probe


def redis_target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def redis_probe(url: str) -> Callable[[], Awaitable[Outcome]]:
    async def probe() -> Outcome:
        client = aioredis.Redis.from_url(url)
        try:
            await client.ping()
            info = await client.info("server")
        finally:
            await client.aclose()
        return Status.OK, f"Redis {info.get('redis_version', '?')}"

    return probe


async def group_lags(connection: Mapping[str, Any]) -> dict[str, dict[TopicPartition, int]]:
    """Per mesh consumer group, each partition it committed: end offset minus its commit."""
    admin = AIOKafkaAdminClient(**connection)
    consumer: AIOKafkaConsumer | None = None
    try:
        await admin.start()
        consumer = await _started(connection)
        listed = await admin.list_consumer_groups()
        groups = sorted(g[0] for g in listed if str(g[0]).startswith(MESH_GROUP_PREFIX))
        lags: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            committed = {
                tp: meta.offset
                for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                if meta.offset >= 0
            }
            ends = await consumer.end_offsets(list(committed)) if committed else {}
            lags[group] = {tp: max(0, ends[tp] - offset) for tp, offset in committed.items()}
        return lags
    finally:
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        with contextlib.suppress(Exception):
            await admin.close()


def lag_results(
    lags: Mapping[str, Mapping[TopicPartition, int]], max_lag: int, seconds: float
) -> list[CheckResult]:
    """One result per group: its total lag, failed above ``max_lag`` records."""
    if not lags:
        return [
            CheckResult(
                "consumer-lag",
                f"{MESH_GROUP_PREFIX}*",
                Status.FAIL,
                "no mesh consumer group on the broker: are the services running?",
                seconds,
            )
        ]
    results = []
    for group, partitions in sorted(lags.items()):
        total = sum(partitions.values())
        worst = max(partitions.items(), key=lambda item: item[1], default=None)
        where = f", most on {worst[0].topic}[{worst[0].partition}]: {worst[1]}" if worst else ""
        status = Status.FAIL if total > max_lag else Status.OK
        detail = f"{total} record(s) behind (max {max_lag}){where if total else ''}"
        results.append(CheckResult("consumer-lag", group, status, detail, seconds))
    return results


async def dlq_depth(connection: Mapping[str, Any]) -> int:
    consumer = await _started(connection)
    try:
        cluster = await cluster_metadata(consumer)
        partitions = [
            TopicPartition(DLQ.name, p) for p in cluster.partitions_for_topic(DLQ.name) or ()
        ]
        if not partitions:
            return 0
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


def dlq_probe(connection: Mapping[str, Any], max_depth: int) -> Callable[[], Awaitable[Outcome]]:
    async def probe() -> Outcome:
        depth = await dlq_depth(connection)
        status = Status.FAIL if depth > max_depth else Status.OK
        return status, f"{depth} dead letter(s) kept (max {max_depth}); `opsmesh dlq list`"

    return probe


async def lag_checks(
    connection: Mapping[str, Any], max_lag: int, timeout_s: float
) -> list[CheckResult]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            lags = await group_lags(connection)
    except TimeoutError:
        detail = f"no answer within {timeout_s:g} s"
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}".strip()
    else:
        return lag_results(lags, max_lag, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    return [CheckResult("consumer-lag", f"{MESH_GROUP_PREFIX}*", Status.FAIL, detail, elapsed)]
