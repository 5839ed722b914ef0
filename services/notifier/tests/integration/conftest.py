"""A controllable webhook destination in a background thread, and the notifier process.

The sink runs its own event loop so it outlives each test's loop; paths pick behaviour:
``/ok/*`` answer 200, ``/flaky/*`` fail a set number of times first, ``/down/*`` always
500 until switched, ``/stall/*`` hold the request until released, ``/slow/*`` take 30 ms.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import NOTIFICATIONS, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh


@dataclass
class Received:
    path: str
    webhook_id: str
    at: float
    body: bytes = b""


@dataclass
class Sink:
    base: str = ""
    received: list[Received] = field(default_factory=list)
    flaky_failures: dict[str, int] = field(default_factory=dict)  # path -> failures left
    down: set[str] = field(default_factory=set)  # paths under /down/ that are up again
    lock: threading.Lock = field(default_factory=threading.Lock)
    loop: asyncio.AbstractEventLoop | None = None
    release: asyncio.Event | None = None

    def ids(self, path: str) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.received if r.path == path]

    def bodies(self, path: str) -> list[bytes]:
        with self.lock:
            return [r.body for r in self.received if r.path == path]

    def all_ids(self, prefix: str) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.received if r.path.startswith(prefix)]

    def release_stalled(self) -> None:
        assert self.loop is not None
        assert self.release is not None
        self.loop.call_soon_threadsafe(self.release.set)


def _serve(sink: Sink, started: threading.Event, stop: threading.Event) -> None:
    loop = asyncio.new_event_loop()
    sink.loop = loop
    sink.release = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        with sink.lock:
            sink.received.append(
                Received(path, request.headers.get("webhook-id", ""), time.time(), body)
            )
            if path.startswith("/flaky/"):
                left = sink.flaky_failures.get(path, 0)
                if left > 0:
                    sink.flaky_failures[path] = left - 1
                    return web.Response(status=503)
            if path.startswith("/down/") and path not in sink.down:
                return web.Response(status=500)
        if path.startswith("/stall/"):
            assert sink.release is not None
            await sink.release.wait()
        if path.startswith("/slow/"):
            await asyncio.sleep(0.03)  # a slow destination, not synchronisation
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", hook)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        sink.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        started.set()
        await asyncio.to_thread(stop.wait)
        assert sink.release is not None
        sink.release.set()
        await runner.cleanup()

    loop.run_until_complete(main())
    loop.close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    state = Sink()
    started, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve, args=(state, started, stop), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield state
    finally:
        stop.set()
        thread.join(10)


RECEIVERS = """
receivers:
  - name: fast
    webhook_configs: [{url: "BASE/ok/fast"}]
  - name: flaky
    webhook_configs: [{url: "BASE/flaky/flaky"}]
  - name: down
    webhook_configs: [{url: "BASE/down/down"}]
  - name: stalled
    webhook_configs: [{url: "BASE/stall/stalled"}]
  - name: multi
    webhook_configs: [{url: "BASE/ok/multi"}, {url: "BASE/down/multi"}]
  - name: slow
    webhook_configs: [{url: "BASE/slow/slow"}]
  - name: mixed
    webhook_configs:
      - {url: "BASE/ok/mixed-resolved"}
      - {url: "BASE/ok/mixed-firing-only", send_resolved: false}
"""


@dataclass
class Notifier:
    mesh: Mesh
    topic: str


@pytest.fixture(scope="module")
def notifier(
    infra: Endpoints, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Notifier]:
    unique = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("notifier")
    receivers = Path(workdir) / "receivers.yml"
    receivers.write_text(RECEIVERS.replace("BASE", sink.base))
    topic = f"test.notifier.requests.{unique}"
    mesh = Mesh(
        infra,
        workdir,
        env={
            "notifier": {
                "NOTIFIER_RECEIVERS_FILE": str(receivers),
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
                "NOTIFIER_REQUESTS_TOPIC": topic,
                "NOTIFIER_CONSUMER_GROUP": f"test.notifier.{unique}",
                "NOTIFIER_RETRY_INITIAL_S": "0.05",
                "NOTIFIER_RETRY_MAX_S": "0.2",
                "NOTIFIER_RETRY_DEADLINE_S": "3",
                "NOTIFIER_SEND_TIMEOUT_S": "2",
                "NOTIFIER_BREAKER_FAILURES": "50",
            }
        },
    )
    asyncio.run(_create_topic(infra.kafka_bootstrap, topic))
    mesh.start(["notifier"])
    try:
        yield Notifier(mesh, topic)
    finally:
        mesh.stop_all()


async def _create_topic(bootstrap: str, name: str) -> None:
    await ensure_topics(
        {"bootstrap_servers": bootstrap},
        [Topic(name, 4, NOTIFICATIONS.key)],
    )
