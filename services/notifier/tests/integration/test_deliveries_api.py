"""The notifier's read API over its delivery log and dead letters, and a dead letter's
replay, as a process over real Kafka, PostgreSQL and Redis: what the console's deliveries
page and an alert's page show."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.kafka import eventually

from notifier.samples import sample_request
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import NOTIFICATIONS, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh

from .conftest import Sink, _create_topic
from .test_delivery_guarantees import outcomes, results

pytestmark = pytest.mark.integration

WRITE = "notifier-deliveries-writer-0123456789"
READ = "notifier-deliveries-reader-0123456789"
RECEIVERS = """
receivers:
  - name: api-ok
    webhook_configs: [{url: "BASE/ok/api-ok"}]
  - name: api-down
    webhook_configs: [{url: "BASE/down/api-down"}]
  - name: api-idle
    webhook_configs: [{url: "BASE/ok/api-idle"}]
"""


@dataclass
class Running:
    mesh: Mesh
    topic: str

    @property
    def url(self) -> str:
        return self.mesh.running["notifier"].url


@pytest.fixture(scope="module")
def running(
    infra: Endpoints, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    unique = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("notifier-deliveries")
    receivers = Path(workdir) / "receivers.yml"
    receivers.write_text(RECEIVERS.replace("BASE", sink.base))
    topic = f"test.notifier.deliveries.{unique}"
    mesh = Mesh(
        infra,
        workdir,
        env={
            "notifier": {
                "NOTIFIER_RECEIVERS_FILE": str(receivers),
                "NOTIFIER_API_TOKENS": f"{WRITE}:write;{READ}:read",
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
                "NOTIFIER_REQUESTS_TOPIC": topic,
                "NOTIFIER_CONSUMER_GROUP": f"test.notifier.deliveries.{unique}",
                "NOTIFIER_RETRY_INITIAL_S": "0.05",
                "NOTIFIER_RETRY_MAX_S": "0.1",
                "NOTIFIER_RETRY_DEADLINE_S": "1.5",
                "NOTIFIER_SEND_TIMEOUT_S": "2",
                "NOTIFIER_BREAKER_FAILURES": "3",
                "NOTIFIER_BREAKER_OPEN_S": "0.2",
            }
        },
    )
    asyncio.run(_create_topic(infra.kafka_bootstrap, topic))
    mesh.start(["notifier"])
    try:
        yield Running(mesh, topic)
    finally:
        mesh.stop_all()


async def publish(infra: Endpoints, topic: str, receiver: str, key: str) -> None:
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/api")
    await producer.start()
    try:
        request = sample_request(receiver, key=key)
        await producer.publish(Outgoing(Topic(topic, 4, NOTIFICATIONS.key), key, request))
    finally:
        await producer.stop()


def call(url: str, *, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def get(url: str) -> Any:
    status, body = await asyncio.to_thread(call, url)
    assert status == 200, body
    return body


def query(**params: str) -> str:
    return urllib.parse.urlencode(params)


async def test_deliveries_are_listed_filtered_and_summed_per_integration(
    infra: Endpoints, running: Running
) -> None:
    ok, down = f"api-ok-{uuid.uuid4().hex[:8]}", f"api-down-{uuid.uuid4().hex[:8]}"
    await publish(infra, running.topic, "api-ok", ok)
    await publish(infra, running.topic, "api-down", down)
    both = f"{running.url}/api/v1/deliveries?idempotency_key={ok}&idempotency_key={down}"
    rows = await eventually(
        lambda: get(both), until=lambda r: len(r) == 2, timeout_s=30, what="two deliveries"
    )
    by_key = {r["idempotency_key"]: r for r in rows}
    assert by_key[ok]["result"] == "delivered"
    assert by_key[ok]["receiver"] == "api-ok"
    assert by_key[ok]["integration"] == "webhook-0"
    assert (by_key[ok]["attempts"], by_key[ok]["retries"]) == (1, 0)
    failed = by_key[down]
    assert failed["result"] == "failed"
    assert failed["status_code"] == 500
    assert failed["attempts"] >= 2
    assert failed["retries"] == failed["attempts"] - 1
    assert "deadline" in failed["error"]

    only_failed = await get(
        f"{running.url}/api/v1/deliveries?" + query(receiver="api-down", result="failed")
    )
    assert down in {r["idempotency_key"] for r in only_failed}
    assert {r["result"] for r in only_failed} == {"failed"}
    assert {r["receiver"] for r in only_failed} == {"api-down"}
    assert (
        await get(f"{running.url}/api/v1/deliveries?" + query(receiver="api-ok", result="failed"))
        == []
    )

    summary = await get(f"{running.url}/api/v1/deliveries/summary")
    rows = {(r["receiver"], r["integration"]): r for r in summary["integrations"]}
    sick = rows[("api-down", "webhook-0")]
    assert sick["failed"] >= 1
    assert sick["retried"] >= 1
    assert sick["retries"] >= failed["retries"]
    assert "deadline" in sick["last_error"]
    # Three failures in a row opened its breaker (0.2 s open, so it may be half open now).
    assert sick["breaker"]["failures"] >= 3
    assert sick["breaker"]["state"] in ("open", "half_open")
    assert rows[("api-ok", "webhook-0")]["delivered"] >= 1
    assert rows[("api-ok", "webhook-0")]["breaker"]["state"] == "closed"
    # Configured but never used: listed with nothing delivered.
    idle = rows[("api-idle", "webhook-0")]
    assert (idle["delivered"], idle["failed"], idle["configured"]) == (0, 0, True)

    status, text = await asyncio.to_thread(call, f"{running.url}/api/v1/deliveries?result=maybe")
    assert status == 400
    assert "result must be one of" in text


async def test_a_dead_letter_is_listed_and_replayed_with_the_write_scope(
    infra: Endpoints, running: Running, sink: Sink
) -> None:
    key = f"api-down-{uuid.uuid4().hex[:8]}"
    path = "/down/api-down"
    await publish(infra, running.topic, "api-down", key)
    letters_url = f"{running.url}/api/v1/dead-letters?" + query(idempotency_key=key)
    [letter] = await eventually(
        lambda: get(letters_url), until=lambda r: len(r) >= 1, timeout_s=30, what="its letter"
    )
    assert letter["reason"] == "delivery_failed"
    assert letter["integration"] == "webhook-0"
    assert letter["receiver"] == "api-down"
    assert letter["notify_reason"] == "first_notification"
    assert letter["group_key"] == sample_request("api-down").group_key
    assert letter["fingerprints"] == ["5f3c2a9d0b1e4f67"]
    assert letter["replayable"] is True
    assert letter["delivery_now"] == "failed"
    assert letter["error"].startswith("webhook-0: ")
    [before_replay] = await get(f"{running.url}/api/v1/deliveries?" + query(idempotency_key=key))
    sent_before_replay = sink.ids(path).count(key)
    assert sent_before_replay == before_replay["attempts"]

    replay = f"{running.url}/api/v1/dead-letters/{letter['id']}/replay"
    assert (await asyncio.to_thread(call, replay, method="POST"))[0] == 401
    assert (await asyncio.to_thread(call, replay, method="POST", token=READ))[0] == 403
    missing = f"{running.url}/api/v1/dead-letters/0-999999999/replay"
    assert (await asyncio.to_thread(call, missing, method="POST", token=WRITE))[0] == 404

    with sink.lock:
        sink.down.add(path)  # the destination is back
    try:
        status, body = await asyncio.to_thread(call, replay, method="POST", token=WRITE)
        assert status == 202, body
        assert body == {"replayed": letter["id"], "topic": running.topic}
        rows = await eventually(
            lambda: get(f"{running.url}/api/v1/deliveries?" + query(idempotency_key=key)),
            until=lambda r: r and r[0]["result"] == "delivered",
            timeout_s=30,
            what="the replayed delivery",
        )
        # The log counts every send: the failed ones before and the one that succeeded.
        assert rows[0]["attempts"] == before_replay["attempts"] + 1
        [after] = await get(letters_url)
        assert after["id"] == letter["id"]
        assert after["delivery_now"] == "delivered"
        # Replaying again sends nothing twice: the log has it delivered.
        status, _ = await asyncio.to_thread(call, replay, method="POST", token=WRITE)
        assert status == 202
        found = await eventually(
            lambda: results(infra, {key}),
            until=lambda r: "duplicate" in outcomes(r, key),
            what="the second replay's result",
        )
        assert outcomes(found, key) == ["delivered", "duplicate", "failed"]
    finally:
        with sink.lock:
            sink.down.discard(path)
    assert sink.ids(path).count(key) == sent_before_replay + 1
