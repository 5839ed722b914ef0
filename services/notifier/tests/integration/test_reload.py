"""The notifier's receivers reload, as processes over real Kafka, PostgreSQL and Redis:
``POST /-/reload`` and SIGHUP apply a changed receivers file, a file that does not load
is refused and the receivers in use keep delivering, a delivery in flight finishes with
the configuration it started with, a removed receiver's deliveries are dead-lettered
with the reason (not retried to the deadline), and a second replica follows a changed
file by itself (the file watch)."""

from __future__ import annotations

import asyncio
import signal
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.fixtures.kafka import eventually, header, read_all

from notifier.samples import sample_request
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.dlq import HEADER_ERROR, HEADER_REASON
from opsmesh.topics import DLQ, NOTIFICATIONS, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh

from .conftest import Sink, _create_topic
from .test_delivery_guarantees import outcomes, results

pytestmark = pytest.mark.integration

TOKEN = "notifier-reload-token-0123456789"

BEFORE = """
receivers:
  - name: steady
    webhook_configs: [{url: "BASE/ok/steady"}]
  - name: moving
    webhook_configs: [{url: "BASE/stall/moving-old"}]
  - name: leaving
    webhook_configs: [{url: "BASE/down/leaving"}]
"""
AFTER = """
receivers:
  - name: steady
    webhook_configs: [{url: "BASE/ok/steady"}]
  - name: moving
    webhook_configs: [{url: "BASE/ok/moving-new"}]
  - name: arriving
    webhook_configs: [{url: "BASE/ok/arriving"}]
"""


@dataclass
class Reloading:
    mesh: Mesh
    topic: str
    file: Path
    base: str

    def write(self, text: str) -> None:
        self.file.write_text(text.replace("BASE", self.base))

    def url(self, key: str = "notifier") -> str:
        return self.mesh.running[key].url


@pytest.fixture(scope="module")
def reloading(
    infra: Endpoints, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reloading]:
    unique = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("notifier-reload")
    topic = f"test.notifier.receivers.reload.{unique}"
    file = Path(workdir) / "receivers.yml"
    state = Reloading(Mesh(infra, workdir), topic, file, sink.base)
    state.write(BEFORE)
    state.mesh.env = {
        "notifier": {
            "NOTIFIER_RECEIVERS_FILE": str(file),
            "NOTIFIER_API_TOKENS": f"{TOKEN}:write",
            "NOTIFIER_CONFIG_CHECK_S": "0.2",
            "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
            "NOTIFIER_REQUESTS_TOPIC": topic,
            "NOTIFIER_CONSUMER_GROUP": f"test.notifier.receivers.reload.{unique}",
            "NOTIFIER_RETRY_INITIAL_S": "0.05",
            "NOTIFIER_RETRY_MAX_S": "0.2",
            # Long: a removed receiver's delivery must end by the reload, not the deadline.
            "NOTIFIER_RETRY_DEADLINE_S": "120",
            "NOTIFIER_SEND_TIMEOUT_S": "60",
            "NOTIFIER_BREAKER_FAILURES": "1000",
        }
    }
    asyncio.run(_create_topic(infra.kafka_bootstrap, topic))
    state.mesh.start(["notifier"])
    try:
        yield state
    finally:
        state.mesh.stop_all()


async def publish(infra: Endpoints, topic: str, receiver: str, key: str) -> None:
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/reload")
    await producer.start()
    try:
        request = sample_request(receiver, key=key)
        await producer.publish(Outgoing(Topic(topic, 4, NOTIFICATIONS.key), key, request))
    finally:
        await producer.stop()


def post_reload(url: str, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{url}/-/reload", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(url: str, name: str) -> float | None:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def receiver_names(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/api/v1/receivers", timeout=5) as response:
        return {r["name"] for r in msgspec.json.decode(response.read())}


async def _names(url: str) -> set[str]:
    return await asyncio.to_thread(receiver_names, url)


async def _count(sink: Sink, path: str) -> int:
    return len(sink.ids(path))


async def dead_letters(infra: Endpoints, key: str) -> list[Any]:
    return [
        r
        for r in await read_all(infra.kafka_bootstrap, DLQ.name)
        if r.key is not None and r.key.decode() == key
    ]


async def test_reload_applies_a_changed_file_and_refuses_a_bad_one(
    infra: Endpoints, reloading: Reloading, sink: Sink
) -> None:
    url = reloading.url()
    # In flight before the reload: one delivery held by its (stalled) destination, one
    # retrying against a destination that keeps failing.
    moving, leaving = f"moving-{uuid.uuid4().hex[:8]}", f"leaving-{uuid.uuid4().hex[:8]}"
    await publish(infra, reloading.topic, "moving", moving)
    await publish(infra, reloading.topic, "leaving", leaving)
    await eventually(
        lambda: _count(sink, "/stall/moving-old"), until=lambda n: n >= 1, what="moving in flight"
    )
    await eventually(
        lambda: _count(sink, "/down/leaving"), until=lambda n: n >= 2, what="leaving retrying"
    )

    assert post_reload(url, token=None)[0] == 401
    assert post_reload(url, token="not-a-known-token-0123456789")[0] == 401
    reloading.write(AFTER)
    status, text = post_reload(url)
    assert status == 200, text
    assert receiver_names(url) == {"steady", "moving", "arriving"}
    assert metric(url, "notifier_config_last_reload_successful") == 1

    # The removed receiver's delivery stops at its next attempt: dead-lettered with the
    # reason, long before its 120 s deadline.
    [result] = await eventually(
        lambda: results(infra, {leaving}), until=lambda r: len(r) >= 1, what="leaving's result"
    )
    assert result["outcome"] == "failed"
    assert "receiver 'leaving' was removed by the configuration reload" in result["error"]
    [dead] = await eventually(
        lambda: dead_letters(infra, leaving), until=lambda d: len(d) >= 1, what="a dead letter"
    )
    assert header(dead, HEADER_REASON) == b"delivery_failed"
    error = header(dead, HEADER_ERROR)
    assert error is not None
    assert b"removed by the configuration reload" in error
    # A request for it consumed after the reload: dead-lettered with the same reason.
    late = f"leaving-late-{uuid.uuid4().hex[:8]}"
    await publish(infra, reloading.topic, "leaving", late)
    [late_result] = await eventually(
        lambda: results(infra, {late}), until=lambda r: len(r) >= 1, what="late's result"
    )
    assert "removed by the configuration reload" in late_result["error"]

    # The delivery in flight finishes with the configuration it started with...
    sink.release_stalled()
    await eventually(
        lambda: results(infra, {moving}), until=lambda r: len(r) >= 1, what="moving's result"
    )
    assert outcomes(await results(infra, {moving}), moving) == ["delivered"]
    assert sink.ids("/stall/moving-old") == [moving]
    assert sink.ids("/ok/moving-new") == []
    # ...and new requests use the new one, including the receiver the reload added.
    fresh = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in ("moving", "arriving")}
    for name, key in fresh.items():
        await publish(infra, reloading.topic, name, key)
    found = await eventually(
        lambda: results(infra, set(fresh.values())), until=lambda r: len(r) >= 2, what="results"
    )
    assert {r["outcome"] for r in found} == {"delivered"}
    assert sink.ids("/ok/moving-new") == [fresh["moving"]]
    assert sink.ids("/ok/arriving") == [fresh["arriving"]]

    # A file that does not load: refused with its reason, the receivers in use stay and
    # deliver; the secret in the webhook URL on the offending line is not repeated.
    reloading.write(AFTER + '  - name: broken\n    webhook_configs: [{url: "BASE/ok/s3cr3t-path"\n')
    status, text = post_reload(url)
    assert status == 400
    assert text.startswith("failed to reload config:")
    assert "not valid YAML" in text
    assert "s3cr3t" not in text
    assert metric(url, "notifier_config_last_reload_successful") == 0
    log_text = reloading.mesh.running["notifier"].log_file.read_text()
    assert "configuration reload refused" in log_text
    assert "s3cr3t" not in log_text
    steady = f"steady-{uuid.uuid4().hex[:8]}"
    await publish(infra, reloading.topic, "steady", steady)
    await eventually(lambda: results(infra, {steady}), until=lambda r: len(r) >= 1, what="steady")
    assert outcomes(await results(infra, {steady}), steady) == ["delivered"]
    assert receiver_names(url) == {"steady", "moving", "arriving"}

    # SIGHUP reloads too (the file fixed again).
    reloading.write(BEFORE)
    reloading.mesh.running["notifier"].process.send_signal(signal.SIGHUP)
    await eventually(
        lambda: _names(url), until=lambda n: n == {"steady", "moving", "leaving"}, what="SIGHUP"
    )
    assert metric(url, "notifier_config_last_reload_successful") == 1


async def test_every_replica_follows_a_changed_file(
    infra: Endpoints, reloading: Reloading, sink: Sink
) -> None:
    reloading.write(BEFORE)
    replica = reloading.mesh.start_replica("notifier", "b")
    try:
        urls = [reloading.url(), reloading.url(replica)]
        for url in urls:
            await eventually(
                lambda url=url: _names(url),  # type: ignore[misc]
                until=lambda n: n == {"steady", "moving", "leaving"},
                what="the first file",
            )
        reloading.write(AFTER)  # no /-/reload, no signal: each replica sees the change
        for url in urls:
            await eventually(
                lambda url=url: _names(url),  # type: ignore[misc]
                until=lambda n: n == {"steady", "moving", "arriving"},
                what="the changed file on every replica",
            )
        # Whichever replica consumes it, a request for the new receiver is delivered.
        keys = {f"arriving-{i}-{uuid.uuid4().hex[:8]}" for i in range(8)}
        for key in keys:
            await publish(infra, reloading.topic, "arriving", key)
        found = await eventually(
            lambda: results(infra, keys), until=lambda r: len(r) >= len(keys), what="all"
        )
        assert {r["outcome"] for r in found} == {"delivered"}
        assert set(sink.ids("/ok/arriving")) >= keys
    finally:
        reloading.mesh.stop(replica)
