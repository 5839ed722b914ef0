"""A hostile corpus through the real notifier (a process over real Kafka, PostgreSQL and
Redis): every case ends delivered, refused when the configuration loads, or
dead-lettered with its reason, never a crashed lane or a held offset; and a good
notification sent after all of them is delivered.

Destinations are local: an origin on 127.0.0.1 (the only allow-listed address) that
answers like the real services, redirects, or echoes requests back in errors; and a
trap on 127.0.0.2 (loopback, not allow-listed) that must never see a request.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from tests.fixtures.kafka import eventually, header, read_all

from notifier.receivers.config import ReceiversError
from notifier.receivers.loading import load_receivers
from notifier.samples import sample_request
from opsmesh.events.alerts import Alert, AlertStatus
from opsmesh.events.notifications import NotificationRequested
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.dlq import HEADER_ERROR, HEADER_REASON
from opsmesh.topics import DELIVERIES, DLQ, NOTIFICATIONS, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.process import free_port
from opsmesh_dev.tools.mesh import Mesh

pytestmark = pytest.mark.integration

QUERY_SECRET = "qsecret-7d1e0c5b"
PATH_SECRET = "psecret-2a9f4e11"
PD_SECRET = "PDROUTINGSECRET0123456789abcdef0"
SECRETS = (QUERY_SECRET, PATH_SECRET, PD_SECRET)
BOMB = '{{ "x"|center(10**9) }}'
LOOP_BOMB = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
FAR = 253_402_387_140.0  # 9999-12-31T23:59:59-23:59, i.e. year 10000 in UTC


@dataclass
class Seen:
    path: str
    body: bytes


@dataclass
class Servers:
    origin: str = ""
    trap_port: int = 0
    seen: list[Seen] = field(default_factory=list)
    trapped: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[bytes]:
        with self.lock:
            return [s.body for s in self.seen if s.path == path]


def _run_servers(state: Servers, started: threading.Event, stop: threading.Event) -> None:
    from aiohttp import web  # noqa: PLC0415 - only this thread's loop uses it

    async def origin(request: web.Request) -> web.Response:
        body = await request.read()
        with state.lock:
            state.seen.append(Seen(request.path, body))
        path = request.path
        if path.startswith("/redirect/"):
            trap = f"http://127.0.0.2:{state.trap_port}/latest/meta-data/?{QUERY_SECRET}"
            return web.Response(status=307, headers={"Location": trap})
        if path.startswith(("/echo500/", "/echo400/")):
            echo = json.dumps({"body": body.decode(errors="replace"), "url": str(request.url)})
            return web.Response(status=500 if "500" in path else 400, text=echo)
        return web.Response(text="ok")

    async def trap(request: web.Request) -> web.Response:
        with state.lock:
            state.trapped.append(Seen(request.path, await request.read()))
        return web.Response(text="ok")

    async def main() -> None:
        runners = []
        for host, handler in (("127.0.0.1", origin), ("127.0.0.2", trap)):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, shutdown_timeout=0.1)
            await runner.setup()
            await web.TCPSite(runner, host, 0).start()
            runners.append(runner)
        state.origin = f"http://127.0.0.1:{runners[0].addresses[0][1]}"
        state.trap_port = runners[1].addresses[0][1]
        started.set()
        await asyncio.to_thread(stop.wait)
        for runner in runners:
            await runner.cleanup()

    asyncio.run(main())


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    state = Servers()
    started, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_run_servers, args=(state, started, stop), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield state
    finally:
        stop.set()
        thread.join(10)


def receivers_file(s: Servers) -> str:
    o, trap, closed = s.origin, s.trap_port, free_port()
    return f"""
receivers:
  - name: good
    webhook_configs: [{{url: "{o}/ok/good"}}]
  - name: far
    webhook_configs: [{{url: "{o}/ok/far-webhook"}}]
    slack_configs: [{{api_url: "{o}/ok/far-slack", send_resolved: true}}]
    pagerduty_configs: [{{routing_key: "{PD_SECRET}", url: "{o}/ok/far-pd"}}]
  - name: data
    slack_configs: [{{api_url: "{o}/ok/data-slack"}}]
    webhook_configs: [{{url: "{o}/ok/data-webhook"}}]
  - name: bomb-slack
    slack_configs: [{{api_url: "{o}/ok/bomb-slack", text: '{BOMB}'}}]
  - name: bomb-pd
    pagerduty_configs:
      - {{routing_key: "{PD_SECRET}", url: "{o}/ok/bomb-pd", summary: "{LOOP_BOMB}"}}
  - name: redirect
    webhook_configs: [{{url: "{o}/redirect/webhook"}}]
    slack_configs: [{{api_url: "{o}/redirect/slack"}}]
    pagerduty_configs: [{{routing_key: "{PD_SECRET}", url: "{o}/redirect/pd"}}]
  - name: literal
    webhook_configs:
      - {{url: "http://[::ffff:127.0.0.2]:{trap}/x"}}
      - {{url: "http://2130706434:{trap}/x"}}
      - {{url: "http://127.0.0.2:{trap}/x"}}
  - name: secret
    webhook_configs: [{{url: "{o}/echo500/{PATH_SECRET}?token={QUERY_SECRET}"}}]
    pagerduty_configs: [{{routing_key: "{PD_SECRET}", url: "{o}/echo400/pd"}}]
  - name: refused
    webhook_configs: [{{url: "http://127.0.0.1:{closed}/{PATH_SECRET}?token={QUERY_SECRET}"}}]
"""


@dataclass
class Hostile:
    mesh: Mesh
    topic: str
    log_file: Path


@pytest.fixture(scope="module")
def hostile(
    infra: Endpoints, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hostile]:
    unique = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("hostile")
    path = workdir / "receivers.yml"
    path.write_text(receivers_file(servers))
    topic = f"test.notifier.hostile.{unique}"
    mesh = Mesh(
        infra,
        workdir,
        env={
            "notifier": {
                "NOTIFIER_RECEIVERS_FILE": str(path),
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.1/32",
                "NOTIFIER_REQUESTS_TOPIC": topic,
                "NOTIFIER_CONSUMER_GROUP": f"test.notifier.hostile.{unique}",
                "NOTIFIER_RETRY_INITIAL_S": "0.05",
                "NOTIFIER_RETRY_MAX_S": "0.2",
                "NOTIFIER_RETRY_DEADLINE_S": "3",
                "NOTIFIER_SEND_TIMEOUT_S": "2",
            }
        },
    )
    asyncio.run(
        ensure_topics(
            {"bootstrap_servers": infra.kafka_bootstrap}, [Topic(topic, 4, NOTIFICATIONS.key)]
        )
    )
    mesh.start(["notifier"])
    try:
        yield Hostile(mesh, topic, workdir / "notifier.log")
    finally:
        mesh.stop_all()


def _key(prefix: str) -> str:
    return f"hostile-{prefix}-{uuid.uuid4().hex[:10]}"


def _with(request: NotificationRequested, **changes: Any) -> NotificationRequested:
    return msgspec.structs.replace(request, **changes)


def _alert(i: int, **fields: Any) -> Alert:
    base: dict[str, Any] = {
        "fingerprint": f"{i:016x}",
        "status": AlertStatus.FIRING,
        "labels": {"alertname": "Many", "i": str(i), **{f"l{j}": "v" * 40 for j in range(5)}},
        "starts_at": 1_700_000_000.0,
    }
    base.update(fields)
    return Alert(**base)


def refused_at_decode() -> dict[str, NotificationRequested]:
    """Requests no service may emit: the consumer's decoder dead-letters them (reason
    schema_violation) before any lane sees them, so they end without a delivery result."""
    base = sample_request("good")
    far = [_alert(1, ends_at=FAR), _alert(2, starts_at=FAR, ends_at=FAR)]
    return {
        "nul-in-labels": _with(
            base,
            idempotency_key=_key("nul-labels"),
            common_labels={"alertname": "A\x00B"},
            common_annotations={"summary": "nul \x00 here"},
        ),
        "nul-in-key": _with(base, idempotency_key=_key("nul") + "\x00"),
        "nul-in-group": _with(base, idempotency_key=_key("nul-group"), group_key="{}:\x00"),
        "far-future": _with(sample_request("far"), idempotency_key=_key("far"), alerts=far),
        # Over the schema's limit (1000 alerts).
        "too-many-alerts": _with(
            base, idempotency_key=_key("too-many-alerts"), alerts=[_alert(i) for i in range(1001)]
        ),
    }


# Cases whose receiver has more than one integration in receivers_file (all others have one).
INTEGRATIONS = {"template-source-as-data": 2, "redirect": 3, "literal": 3, "secret": 2}


def corpus() -> dict[str, tuple[NotificationRequested, str]]:
    """name → (request, how it must end: delivered | failed:<reason fragment>)."""
    out: dict[str, tuple[NotificationRequested, str]] = {}

    def add(name: str, request: NotificationRequested, expect: str) -> None:
        out[name] = (_with(request, idempotency_key=_key(name)), expect)

    base = sample_request("good")
    add("huge-alert-list", _with(base, alerts=[_alert(i) for i in range(1000)]), "delivered")
    add(
        "template-source-as-data",
        _with(
            sample_request("data", summary=BOMB),
            common_labels={"alertname": LOOP_BOMB},
        ),
        "delivered",
    )
    add("bomb-slack", sample_request("bomb-slack"), "failed:template budget exceeded")
    add("bomb-pd", sample_request("bomb-pd"), "failed:template budget exceeded")
    add("redirect", sample_request("redirect"), "failed:redirected")
    add("literal", sample_request("literal"), "failed:refused_target")
    add("secret", sample_request("secret"), "failed:")
    add("refused", sample_request("refused"), "failed:network")
    add("unknown-receiver", sample_request("nobody"), "failed:not_configured")
    return out


async def publish(infra: Endpoints, topic: str, requests: list[NotificationRequested]) -> None:
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/hostile")
    await producer.start()
    try:
        target = Topic(topic, 4, NOTIFICATIONS.key)
        await producer.publish_many(Outgoing(target, r.idempotency_key, r) for r in requests)
    finally:
        await producer.stop()


async def results(infra: Endpoints, keys: set[str]) -> list[dict[str, Any]]:
    out = []
    for record in await read_all(infra.kafka_bootstrap, DELIVERIES.name):
        if record.key is not None and record.key.decode(errors="replace") in keys:
            out.append(msgspec.json.decode(record.value))
    return out


def _metrics(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as page:
        return str(page.read().decode())


def test_a_receivers_file_with_an_unusable_target_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "receivers.yml"
    path.write_text(
        'receivers:\n  - name: r\n    webhook_configs: [{url: "file:///etc/passwd?t=SECRET"}]\n'
    )
    with pytest.raises(ReceiversError, match="must be an http:// or https:// URL") as info:
        load_receivers(str(path), None)
    assert "SECRET" not in str(info.value)


@pytest.mark.timeout(240)
async def test_every_hostile_case_ends_and_a_good_one_follows(
    infra: Endpoints, hostile: Hostile, servers: Servers
) -> None:
    cases = corpus()
    requests = [request for request, _ in cases.values()]
    undecodable = refused_at_decode()
    await publish(infra, hostile.topic, [*requests, *undecodable.values()])
    keys = {r.idempotency_key for r in requests}
    # One result per integration: a receiver's integrations finish at different times
    # (the echo500 webhook retries while the echo400 PagerDuty call fails at once).
    want = {cases[name][0].idempotency_key: n for name, n in INTEGRATIONS.items()}

    def complete(found: list[dict[str, Any]]) -> bool:
        counts = collections.Counter(x["idempotency_key"] for x in found)
        return all(counts[key] >= want.get(key, 1) for key in keys)

    found = await eventually(
        lambda: results(infra, keys),
        until=complete,
        timeout_s=90,
        what="a result for every integration of every hostile request",
    )
    by_key: dict[str, list[dict[str, Any]]] = {}
    for result in found:
        by_key.setdefault(result["idempotency_key"], []).append(result)

    for name, (request, expect) in cases.items():
        got = by_key[request.idempotency_key]
        if expect == "delivered":
            assert {r["outcome"] for r in got} == {"delivered"}, (name, got)
        else:
            assert all(r["outcome"] == "failed" for r in got), (name, got)
            fragment = expect.removeprefix("failed:")
            assert all(fragment in (r["error"] or "") for r in got), (name, got)

    # Data is never compiled as a template: the bomb's source arrives as text.
    [slack_body] = servers.bodies("/ok/data-slack")
    assert BOMB.replace('"', '\\"') in slack_body.decode()
    [webhook_body] = servers.bodies("/ok/data-webhook")
    assert json.loads(webhook_body)["commonLabels"]["alertname"] == LOOP_BOMB
    # Refused at decode: nothing of them was sent anywhere.
    assert servers.bodies("/ok/far-webhook") == []
    # The template bombs were refused before anything was sent.
    assert servers.bodies("/ok/bomb-slack") == []
    assert servers.bodies("/ok/bomb-pd") == []
    # Redirects were answered once each and not followed; the trap saw nothing at all.
    assert len(servers.bodies("/redirect/webhook")) == 1
    assert servers.trapped == []

    # Failed requests are in the DLQ with their reason and a secret-free error.
    dead = {
        r.key.decode(errors="replace"): r
        for r in await read_all(infra.kafka_bootstrap, DLQ.name)
        if r.key is not None and r.key.decode(errors="replace").startswith("hostile-")
    }
    for name, (request, expect) in cases.items():
        if expect.startswith("failed:"):
            record = dead[request.idempotency_key]
            assert header(record, HEADER_REASON) == b"delivery_failed", name
            error = (header(record, HEADER_ERROR) or b"").decode()
            assert all(secret not in error for secret in SECRETS), (name, error)
    for name, request in undecodable.items():
        assert header(dead[request.idempotency_key], HEADER_REASON) == b"schema_violation", name

    # Secrets: not in results, delivery-log rows, DLQ headers (above) or the service's log.
    assert all(secret not in json.dumps(found) for secret in SECRETS)
    with psycopg.connect(infra.pg_dsn) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, integration, outcome, coalesce(error, '')"
            " FROM notifier.delivery_log WHERE idempotency_key LIKE 'hostile-%'"
        ).fetchall()
    assert rows, "failed deliveries are recorded"
    assert all(secret not in error for *_, error in rows for secret in SECRETS)
    secret_rows = [r for r in rows if r[0] == cases["secret"][0].idempotency_key]
    assert {r[1] for r in secret_rows} == {"webhook-0", "pagerduty-0"}
    assert any("<secret>" in r[3] for r in secret_rows), "the echoed routing key was redacted"
    log = hostile.log_file.read_text(errors="replace")
    assert "delivery failed" in log
    assert all(secret not in log for secret in SECRETS)
    assert "lane job crashed" not in log
    # Metric labels: configured names and named reasons only, never a request's text.
    metrics = await asyncio.to_thread(_metrics, hostile.mesh.running["notifier"].url)
    assert 'receiver="nobody"' not in metrics
    assert 'receiver="unconfigured"' in metrics
    assert all(secret not in metrics for secret in SECRETS)

    # After all of that, the notifier still delivers.
    last = sample_request("good", key=_key("after"))
    await publish(infra, hostile.topic, [last])
    [result] = await eventually(
        lambda: results(infra, {last.idempotency_key}),
        until=lambda r: len(r) >= 1,
        timeout_s=30,
        what="the good request after the corpus",
    )
    assert result["outcome"] == "delivered"
