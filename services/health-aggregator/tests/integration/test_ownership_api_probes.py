"""Over real PostgreSQL, Kafka and Redis: partition ownership of check state, the view
and endpoints, and every kind of active probe against a live target."""

from __future__ import annotations

import asyncio
import random
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from health_aggregator.api import routes
from health_aggregator.bootstrap import SERVICES, Services
from health_aggregator.core.checks import OwnedChecks
from health_aggregator.core.policy import Policy
from health_aggregator.core.probes import ProbeKind, ProbeSpec, Why
from health_aggregator.pipeline.health_stage import HealthStage
from health_aggregator.pipeline.probes import (
    ProbeShare,
    load_specs,
    probe_key,
    probe_loop,
    run_probe,
)
from health_aggregator.pipeline.view import HealthView
from health_aggregator.storage.checks import CheckStore, partition_of
from opsmesh.clock import SystemClock
from opsmesh.db.pool import open_pool
from opsmesh.events.health import HealthReported, HealthStatus
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import HEALTH, partition_for
from opsmesh.tracing.context import TraceContext, new_trace
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration


@dataclass
class FakeProducer:
    sent: list[Outgoing] = field(default_factory=list)

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        self.sent.extend(items)


@dataclass
class Msg:
    partition: int


@dataclass
class Rec:
    event: HealthReported
    message: Msg
    trace: TraceContext | None = None  # the record's traceparent, as Received.trace


@pytest.fixture
async def store(infra: Endpoints) -> AsyncIterator[CheckStore]:
    pool = await open_pool(infra.pg_dsn, name="tests-health")
    try:
        yield CheckStore(pool)
    finally:
        await pool.close()


def beat(service: str, instance: str, at: float, ttl: float = 5.0) -> HealthReported:
    return HealthReported(
        service=service, instance=instance, status=HealthStatus.PASS, ttl_s=ttl, reported_at=at
    )


async def test_a_replica_loads_expires_and_signals_only_its_partitions(store, unique):
    service = f"own-{unique}"
    now = time.time()
    instances = [f"i-{n}" for n in range(16)]
    by_partition: dict[int, list[str]] = {}
    for instance in instances:
        by_partition.setdefault(partition_of(service, instance), []).append(instance)
    mine, theirs = sorted(by_partition)[:1], sorted(by_partition)[1:]
    assert theirs, "the instances spread over more than one partition"

    writer = HealthStage(
        owned=OwnedChecks(),
        store=store,
        producer=FakeProducer(),
        clock=FakeClock(now),
        registry=CollectorRegistry(),
    )
    await writer.handle(
        [Rec(beat(service, i, now), Msg(partition_of(service, i))) for i in instances]
    )

    clock = FakeClock(now)
    producer = FakeProducer()
    share = ProbeShare()
    replica = HealthStage(
        owned=OwnedChecks(),
        store=store,
        producer=producer,
        clock=clock,
        registry=CollectorRegistry(),
        ownership=share,
    )
    await replica.on_assigned({(HEALTH.name, p) for p in mine})
    assert replica.warmed
    probe = ProbeSpec(
        service=service,
        instance=by_partition[mine[0]][0],
        check="c",
        kind=ProbeKind.TCP,
        target="127.0.0.1:1",
    )
    assert share.runs_here(probe), "probes follow the health partitions the stage owns"
    clock.advance(10)
    await replica.handle([])
    expired = sorted(o.event.labels["instance"] for o in producer.sent)
    assert expired == sorted(by_partition[mine[0]]), "only its own partition's checks expire"

    await replica.on_revoked({(HEALTH.name, p) for p in mine})
    assert not share.runs_here(probe)
    clock.advance(100)
    producer.sent.clear()
    await replica.handle([])
    assert producer.sent == []


async def _client(view: HealthView, store: CheckStore, stage: HealthStage) -> TestClient:
    await stage.on_assigned(set())  # as the consumer does at start: its partitions, none here
    app = web.Application()
    app[SERVICES] = Services(
        store=store,
        view=view,
        stage=stage,
        probes=None,
        readiness=list,
        version="t",
        history_limit=100,
    )
    routes(100)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_a_change_signal_continues_its_reports_trace_and_an_expiry_starts_one(store, unique):
    now = time.time()
    producer = FakeProducer()
    clock = FakeClock(now)
    stage = HealthStage(
        owned=OwnedChecks(),
        store=store,
        producer=producer,
        clock=clock,
        registry=CollectorRegistry(),
    )
    service = f"traced-{unique}"
    report = new_trace()
    await stage.handle([Rec(beat(service, "a", now), Msg(partition_of(service, "a")), report)])
    [changed] = producer.sent
    assert changed.trace == report
    clock.advance(10)
    await stage.handle([])
    [_, expired] = producer.sent
    assert expired.event.labels["cause"] == "ttl_expired"
    assert expired.trace is None, "no report behind an expiry: the producer starts a trace"


async def test_endpoints_aggregate_with_policies_in_health_json(store, unique):
    ok, shaky = f"ok-{unique}", f"shaky-{unique}"
    now = time.time()
    stage = HealthStage(
        owned=OwnedChecks(),
        store=store,
        producer=FakeProducer(),
        clock=SystemClock(),
        registry=CollectorRegistry(),
    )
    reports = [beat(ok, "a", now, 60), beat(ok, "b", now, 60)]
    reports += [
        beat(shaky, "a", now, 60),
        HealthReported(
            service=shaky, instance="b", status=HealthStatus.FAIL, reported_at=now, ttl_s=60
        ),
        HealthReported(
            service=shaky, instance="c", status=HealthStatus.FAIL, reported_at=now, ttl_s=60
        ),
    ]
    await stage.handle([Rec(r, Msg(partition_of(r.service, r.instance))) for r in reports])
    view = HealthView(
        store,
        clock=SystemClock(),
        policies={shaky: Policy.ANY},
        default_policy=Policy.ALL,
        service_id="agg",
        version="t",
    )
    await view.refresh()
    client = await _client(view, store, stage)
    try:
        response = await client.get("/health/")
        assert response.headers["Content-Type"].startswith("application/health+json")
        body = await response.json(content_type=None)
        assert body["checks"][f"{ok}:instances"][0]["status"] == "pass"
        shaky_entry = body["checks"][f"{shaky}:instances"][0]
        assert (shaky_entry["status"], shaky_entry["policy"]) == ("warn", "any")

        response = await client.get(f"/health/check/{shaky}/")
        assert response.status == 200
        doc = await response.json(content_type=None)
        assert doc["status"] == "warn"
        assert {e["componentId"] for e in doc["checks"]["heartbeat:status"]} == {"a", "b", "c"}
        assert (await client.get("/health/check/nope-unknown/")).status == 404

        live = await client.get("/health/live/")
        assert (live.status, (await live.json(content_type=None))["status"]) == (200, "pass")
        ready = await client.get("/health/ready/")
        assert ready.status == 200

        detail = await (await client.get(f"/api/v1/services/{shaky}")).json()
        assert (detail["healthy"], detail["total"]) == (1, 3)
        assert {h["instance"] for h in detail["history"]} == {"a", "b", "c"}
        listed = await (await client.get("/api/v1/services")).json()
        assert {s["service"] for s in listed} >= {ok, shaky}
    finally:
        await client.close()


# -- probes -------------------------------------------------------------------------------


def probe(kind: ProbeKind, target: str, **fields: object) -> ProbeSpec:
    return ProbeSpec(service="p", check=kind.value, kind=kind, target=target, **fields)  # type: ignore[arg-type]


async def _serve(ssl_context=None) -> tuple[web.AppRunner, int]:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="status: healthy")

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(1.0)  # the target is slow on purpose
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def test_http_probes(unique):
    runner, port = await _serve()
    base = f"http://127.0.0.1:{port}"
    try:
        good = await run_probe(probe(ProbeKind.HTTP, f"{base}/ok", body_contains="healthy"))
        assert (good.status, good.why) == (HealthStatus.PASS, Why.OK)
        assert good.observed is not None
        bad = await run_probe(probe(ProbeKind.HTTP, f"{base}/broken"))
        assert bad.why is Why.UNEXPECTED_STATUS
        body = await run_probe(probe(ProbeKind.HTTP, f"{base}/ok", body_regex="^nope"))
        assert body.why is Why.BODY_MISMATCH
        slow = await run_probe(probe(ProbeKind.HTTP, f"{base}/slow", timeout_s=0.3))
        assert slow.why is Why.TIMEOUT
    finally:
        await runner.cleanup()


async def test_https_probe_reports_days_to_certificate_expiry(tmp_path: Path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run,
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "5",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner, port = await _serve(context)
    try:
        outcome = await run_probe(
            probe(ProbeKind.HTTP, f"https://127.0.0.1:{port}/ok", ca_file=str(cert))
        )
        assert (outcome.status, outcome.why) == (HealthStatus.WARN, Why.CERT_EXPIRING)
        assert outcome.observed == pytest.approx(5.0, abs=0.1)
        untrusted = await run_probe(probe(ProbeKind.HTTP, f"https://127.0.0.1:{port}/ok"))
        assert untrusted.why is Why.UNREACHABLE, "an unverifiable certificate fails"
    finally:
        await runner.cleanup()


async def test_tcp_postgres_redis_kafka_and_disk_probes(infra: Endpoints, tmp_path: Path):
    kafka_host, _, kafka_port = infra.kafka_bootstrap.rpartition(":")
    cases = [
        (probe(ProbeKind.TCP, f"{kafka_host}:{kafka_port}"), HealthStatus.PASS),
        (probe(ProbeKind.TCP, "127.0.0.1:1"), HealthStatus.FAIL),
        (probe(ProbeKind.POSTGRES, infra.pg_dsn), HealthStatus.PASS),
        (probe(ProbeKind.POSTGRES, "postgresql://nobody@127.0.0.1:1/x"), HealthStatus.FAIL),
        (probe(ProbeKind.REDIS, infra.redis_url), HealthStatus.PASS),
        (probe(ProbeKind.REDIS, "redis://127.0.0.1:1/0"), HealthStatus.FAIL),
        (probe(ProbeKind.KAFKA, infra.kafka_bootstrap, timeout_s=5), HealthStatus.PASS),
        (probe(ProbeKind.KAFKA, "127.0.0.1:1", timeout_s=1), HealthStatus.FAIL),
        (probe(ProbeKind.DISK, str(tmp_path), warn_free_pct=0, fail_free_pct=0), HealthStatus.PASS),
        (probe(ProbeKind.DISK, str(tmp_path), fail_free_pct=101), HealthStatus.FAIL),
    ]
    outcomes = await asyncio.gather(*(run_probe(s) for s, _ in cases))
    got = [(s.kind.value, s.target, o.status) for (s, _), o in zip(cases, outcomes, strict=True)]
    want = [(s.kind.value, s.target, w) for s, w in cases]
    assert got == want, [o.output for o in outcomes]


async def test_the_probe_loop_publishes_reports_on_its_interval(infra: Endpoints, tmp_path: Path):
    probes = tmp_path / "probes.yml"
    probes.write_text(
        f"- {{service: pg, check: postgres, kind: postgres, target: '{infra.pg_dsn}',"
        " interval_s: 0.05, timeout_s: 2}\n"
    )
    (spec,) = load_specs(probes)
    sent: list[Outgoing] = []
    stop = asyncio.Event()

    async def publish(item: Outgoing) -> None:
        sent.append(item)
        if len(sent) == 3:
            stop.set()

    await asyncio.wait_for(
        probe_loop(
            spec,
            publish=publish,
            clock=SystemClock(),
            stop=stop,
            jitter=0.1,
            rng=random.Random(1),
        ),
        timeout=20,
    )
    assert [(o.topic, o.key) for o in sent] == [(HEALTH, "pg/probe")] * 3
    assert all(o.event.status is HealthStatus.PASS for o in sent)
    assert sent[0].event.ttl_s == pytest.approx(0.15)


async def test_each_probe_runs_only_on_the_replica_owning_its_results_partition(tmp_path: Path):
    probes = tmp_path / "probes.yml"
    probes.write_text(
        "".join(
            f"- {{service: svc-{i}, check: disk, kind: disk, target: '{tmp_path}',"
            " interval_s: 0.02, warn_free_pct: 0, fail_free_pct: 0}\n"
            for i in range(8)
        )
    )
    specs = load_specs(probes)
    first, second, unassigned = ProbeShare(8), ProbeShare(8), ProbeShare(8)
    first.assigned({0, 1, 2, 3})
    second.assigned({4, 5, 6, 7})
    second.revoked({7})
    first.assigned({7})  # a handover
    sent: dict[str, list[Outgoing]] = {"first": [], "second": [], "unassigned": []}
    stop = asyncio.Event()

    def publisher(replica: str) -> Callable[[Outgoing], Awaitable[None]]:
        async def publish(item: Outgoing) -> None:
            sent[replica].append(item)
            seen = {o.key for r in ("first", "second") for o in sent[r]}
            if len(seen) == len(specs):
                stop.set()

        return publish

    loops = [
        probe_loop(
            spec,
            publish=publisher(name),
            clock=SystemClock(),
            stop=stop,
            jitter=0.1,
            rng=random.Random(i),
            runs_here=share.runs_here,
        )
        for name, share in (("first", first), ("second", second), ("unassigned", unassigned))
        for i, spec in enumerate(specs)
    ]
    await asyncio.wait_for(asyncio.gather(*loops), timeout=20)
    owner = {probe_key(s): partition_for(probe_key(s), 8) for s in specs}
    assert {o.key for o in sent["first"]} == {k for k, p in owner.items() if p in {0, 1, 2, 3, 7}}
    assert {o.key for o in sent["second"]} == {k for k, p in owner.items() if p in {4, 5, 6}}
    assert sent["unassigned"] == [], "a replica owning no health partition probes nothing"
