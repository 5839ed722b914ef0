"""The real notifier (a process over real Kafka, PostgreSQL and Redis) with an Alertmanager
configuration: its Go templates render through opsmesh-amtemplate; hostile templates (a
render that never ends, one that allocates without bound, a missing template) are
dead-lettered with their reason while the service stays ready, and a good notification
after them is delivered."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.fixtures.kafka import eventually, read_all

from notifier.amtemplate.build import build
from notifier.samples import sample_request
from opsmesh.events.notifications import NotificationRequested
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import DELIVERIES, NOTIFICATIONS, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh

pytestmark = pytest.mark.integration

FOREVER = "{{ range 1000000000 }}{{ range 1000000000 }}{{ end }}{{ end }}"
GREEDY = (
    '{{ $a := "0123456789abcdef" }}{{ range 40 }}{{ $a = printf "%s%s" $a $a }}{{ end }}'
    "{{ len $a }}"
)


@dataclass
class Origin:
    url: str = ""
    seen: dict[str, list[bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[bytes]:
        with self.lock:
            return list(self.seen.get(path, []))


def _serve(state: Origin, started: threading.Event, stop: threading.Event) -> None:
    from aiohttp import web  # noqa: PLC0415 - only this thread's loop uses it

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        with state.lock:
            state.seen.setdefault(request.path, []).append(body)
        if request.path.startswith("/pd/"):
            return web.json_response({"status": "success"}, status=202)
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        started.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    asyncio.run(main())


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    state = Origin()
    started, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve, args=(state, started, stop), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield state
    finally:
        stop.set()
        thread.join(10)


def _config(o: str) -> str:
    return f"""
global: {{resolve_timeout: 5m}}
templates: ["templates/*.tmpl"]
route: {{receiver: good, group_by: [alertname]}}
receivers:
  - name: good
    slack_configs:
      - api_url: "{o}/slack/good"
        text: '{{{{ template "ops.text" . }}}}'
    pagerduty_configs: [{{routing_key: "routing-key-0123", url: "{o}/pd/good"}}]
  - name: forever
    slack_configs: [{{api_url: "{o}/slack/forever", text: '{FOREVER}'}}]
  - name: greedy
    pagerduty_configs:
      - {{routing_key: "routing-key-0123", url: "{o}/pd/greedy", description: '{GREEDY}'}}
  - name: missing
    slack_configs: [{{api_url: "{o}/slack/missing", title: '{{{{ template "nope" . }}}}'}}]
"""


@dataclass
class Running:
    mesh: Mesh
    topic: str


@pytest.fixture(scope="module")
def running(
    infra: Endpoints, origin: Origin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    unique = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("go-templates")
    (workdir / "templates").mkdir()
    (workdir / "templates" / "ops.tmpl").write_text(
        '{{ define "ops.text" }}{{ range .Alerts }}{{ .Annotations.summary }} '
        "({{ .Labels.instance }}){{ end }}{{ end }}"
    )
    path = workdir / "alertmanager.yml"
    path.write_text(_config(origin.url))
    topic = f"test.notifier.go.{unique}"
    mesh = Mesh(
        infra,
        workdir,
        env={
            "notifier": {
                "NOTIFIER_RECEIVERS_FILE": str(path),
                "NOTIFIER_AMTEMPLATE_BIN": str(build()),
                "NOTIFIER_AMTEMPLATE_MAX_MEMORY_MB": "64",
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.1/32",
                "NOTIFIER_REQUESTS_TOPIC": topic,
                "NOTIFIER_CONSUMER_GROUP": f"test.notifier.go.{unique}",
                "NOTIFIER_RETRY_INITIAL_S": "0.05",
                "NOTIFIER_RETRY_DEADLINE_S": "3",
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
        yield Running(mesh, topic)
    finally:
        mesh.stop_all()


async def _publish(infra: Endpoints, topic: str, requests: list[NotificationRequested]) -> None:
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/go")
    await producer.start()
    try:
        target = Topic(topic, 4, NOTIFICATIONS.key)
        await producer.publish_many(Outgoing(target, r.idempotency_key, r) for r in requests)
    finally:
        await producer.stop()


async def _results(infra: Endpoints, keys: set[str]) -> list[dict[str, Any]]:
    out = []
    for record in await read_all(infra.kafka_bootstrap, DELIVERIES.name):
        if record.key is not None and record.key.decode(errors="replace") in keys:
            out.append(msgspec.json.decode(record.value))
    return out


def _ready(base: str) -> int:
    try:
        with urllib.request.urlopen(f"{base}/health/ready", timeout=5) as page:
            return int(page.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _key(name: str) -> str:
    return f"go-{name}-{uuid.uuid4().hex[:10]}"


@pytest.mark.timeout(180)
async def test_alertmanager_templates_through_the_real_notifier(
    infra: Endpoints, running: Running, origin: Origin
) -> None:
    cases = {
        "good": "delivered",
        "forever": "template budget exceeded: rendering took longer than 2.0 s",
        "greedy": "template budget exceeded: the render needed more than 64 MiB",
        "missing": 'template "nope" not defined',
    }
    requests = {name: sample_request(name, key=_key(name)) for name in cases}
    await _publish(infra, running.topic, list(requests.values()))
    keys = {r.idempotency_key for r in requests.values()}
    base = running.mesh.running["notifier"].url
    found = await eventually(
        lambda: _results(infra, keys),
        until=lambda r: len(r) >= 5,  # good: Slack and PagerDuty; the others one each
        timeout_s=90,
        what="a result for every integration of every request",
    )
    assert await asyncio.to_thread(_ready, base) == 200
    by_key: dict[str, list[dict[str, Any]]] = {}
    for result in found:  # one per integration
        by_key.setdefault(result["idempotency_key"], []).append(result)
    for name, expect in cases.items():
        for result in by_key[requests[name].idempotency_key]:
            if expect == "delivered":
                assert result["outcome"] == "delivered", (name, result)
            else:
                assert result["outcome"] == "failed", (name, result)
                assert expect in (result["error"] or ""), (name, result)

    [slack] = origin.bodies("/slack/good")
    attachment = json.loads(slack)["attachments"][0]
    assert attachment["title"] == "[FIRING:1] DiskAlmostFull checkout (db-1:9100 page)"
    assert attachment["text"] == "Disk <sda1> is 97% full & climbing (db-1:9100)"
    assert attachment["color"] == "danger"
    [event] = origin.bodies("/pd/good")
    assert json.loads(event)["payload"]["summary"] == attachment["title"]
    for path in ("/slack/forever", "/pd/greedy", "/slack/missing"):
        assert origin.bodies(path) == []

    # The renderer processes that were killed are replaced: the next one renders.
    after = sample_request("good", key=_key("after"))
    await _publish(infra, running.topic, [after])
    results = await eventually(
        lambda: _results(infra, {after.idempotency_key}),
        until=lambda r: len(r) >= 2,  # Slack and PagerDuty
        timeout_s=30,
        what="the good request after the hostile ones",
    )
    assert {r["outcome"] for r in results} == {"delivered"}
    assert len(origin.bodies("/slack/good")) == 2


def test_a_template_file_that_does_not_parse_stops_the_notifier_at_start(
    tmp_path: Path,
) -> None:
    import asyncio as aio  # noqa: PLC0415

    from notifier.amtemplate import AlertmanagerTemplates, GoRenderer, TemplateError  # noqa: PLC0415

    (tmp_path / "bad.tmpl").write_text('{{ define "x" }}{{ if }}{{ end }}')

    async def check() -> None:
        renderer = GoRenderer(build(), workers=1)
        try:
            await AlertmanagerTemplates(renderer, [str(tmp_path / "*.tmpl")]).check()
        finally:
            await renderer.close()

    with pytest.raises(TemplateError, match=r"bad\.tmpl:1: missing value for if"):
        aio.run(check())
