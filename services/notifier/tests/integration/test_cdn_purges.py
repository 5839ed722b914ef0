"""CDN purges through the notifier as a process, over real Kafka, PostgreSQL and Redis.

The providers are the SDK's generic provider (``opsmesh_client.cdn.generic``, loaded from
``NOTIFIER_CDN_PROVIDERS_FILE`` by ``providers_from_file``) pointed at a local server that
speaks its purge protocol: one that accepts, one that answers 503 twice per purge before
accepting, one that refuses with 403, one that answers 503 to everything. Each purge event
must reach each provider exactly once (also when the event is delivered twice), a
transient failure is retried, a deterministic one (and one whose retries ran out) is
dead-lettered with its reason and raises the catalogue's signal.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from tests.fixtures.kafka import eventually, group_offsets, header, read_all

from opsmesh.catalogue import CDN_PURGE_DEAD_LETTERED
from opsmesh.events.cdn import CdnPurgeRequested, CdnPurgeScope, purge_integration, purge_key
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.admin import ensure_topics
from opsmesh.kafka.dlq import HEADER_ERROR, HEADER_REASON, HEADER_TOPIC
from opsmesh.topics import CDN_PURGES, DLQ, NOTIFICATIONS, SIGNALS, Topic
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh

pytestmark = pytest.mark.integration

FLAKY_FAILURES = 2  # 503s a flaky provider answers for each purge before it accepts


@dataclass
class PurgeApi:
    """A CDN purge endpoint per provider (``POST /<provider>``), in its own thread."""

    base: str = ""
    calls: list[tuple[str, str, int]] = field(default_factory=list)  # provider, values, status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, provider: str, values: str) -> list[int]:
        with self.lock:
            return [s for p, v, s in self.calls if p == provider and v == values]


def _serve(api: PurgeApi, started: threading.Event, stop: threading.Event) -> None:
    loop = asyncio.new_event_loop()

    async def purge(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        body = await request.json()
        values = ",".join(body["values"]) or "*"
        with api.lock:
            earlier = [s for p, v, s in api.calls if p == provider and v == values]
            if provider.startswith("refuses"):
                status = 403
            elif provider.startswith("down") or (
                provider.startswith("flaky") and len(earlier) < FLAKY_FAILURES
            ):
                status = 503
            else:
                status = 200
            api.calls.append((provider, values, status))
        return web.Response(status=status, text="invalid token" if status == 403 else "ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/{provider}", purge)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        api.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        started.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    loop.run_until_complete(main())
    loop.close()


@dataclass
class World:
    mesh: Mesh
    api: PurgeApi
    topic: Topic
    group: str
    ok: str
    flaky: str
    refuses: str
    down: str

    def deliveries(self, purge_id: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"idempotency_key": purge_key(purge_id)})
        url = f"{self.mesh.running['notifier'].url}/api/v1/deliveries?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            rows: list[dict[str, Any]] = json.loads(response.read())
        return rows

    def get(self, path: str) -> Any:
        return self.mesh.get_json("notifier", path)


@pytest.fixture(scope="module")
def world(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    api, started, stop = PurgeApi(), threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve, args=(api, started, stop), daemon=True)
    thread.start()
    assert started.wait(10)
    unique = uuid.uuid4().hex[:10]
    ok, flaky, refuses = f"ok-{unique}", f"flaky-{unique}", f"refuses-{unique}"
    down = f"down-{unique}"
    workdir = Path(tmp_path_factory.mktemp("cdn-purges"))
    providers = workdir / "cdn.yml"
    providers.write_text(
        "".join(
            f"{name}:\n  type: generic\n  base_url: https://{name}.example.com\n"
            f"  purge_url: {api.base}/{name}\n  timeout_s: 5\n"
            for name in (ok, flaky, refuses, down)
        )
    )
    receivers = workdir / "receivers.yml"
    receivers.write_text(
        f"receivers:\n  - name: unused\n    webhook_configs: [{{url: '{api.base}/unused'}}]\n"
    )
    topic = Topic(f"test.cdn-purges.{unique}", 2, CDN_PURGES.key)
    requests = Topic(f"test.notifier.requests.{unique}", 1, NOTIFICATIONS.key)
    group = f"test.notifier.cdn.{unique}"
    asyncio.run(ensure_topics({"bootstrap_servers": infra.kafka_bootstrap}, [topic, requests]))
    mesh = Mesh(
        infra,
        workdir,
        env={
            "notifier": {
                "NOTIFIER_RECEIVERS_FILE": str(receivers),
                "NOTIFIER_REQUESTS_TOPIC": requests.name,
                "NOTIFIER_CONSUMER_GROUP": f"test.notifier.{unique}",
                "NOTIFIER_CDN_PROVIDERS_FILE": str(providers),
                "NOTIFIER_CDN_PURGES_TOPIC": topic.name,
                "NOTIFIER_CDN_CONSUMER_GROUP": group,
                "NOTIFIER_RETRY_INITIAL_S": "0.05",
                "NOTIFIER_RETRY_MAX_S": "0.2",
                "NOTIFIER_RETRY_DEADLINE_S": "5",
                "NOTIFIER_BREAKER_FAILURES": "50",
            }
        },
    )
    mesh.start(["notifier"])
    try:
        yield World(mesh, api, topic, group, ok, flaky, refuses, down)
    finally:
        mesh.stop_all()
        stop.set()
        thread.join(10)


def purge(purge_id: str, values: list[str], providers: list[str]) -> CdnPurgeRequested:
    return CdnPurgeRequested(
        id=purge_id,
        scope=CdnPurgeScope.URL,
        values=values,
        providers=providers,
        source="tests",
        reason="integration test",
        requested_at=1_760_000_000.0,
    )


async def publish(infra: Endpoints, topic: Topic, *events: CdnPurgeRequested) -> None:
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/cdn")
    await producer.start()
    try:
        await producer.publish_many(Outgoing(topic, e.id, e) for e in events)
    finally:
        await producer.stop()


async def publish_raw(infra: Endpoints, topic: Topic, key: bytes, value: bytes) -> None:
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/cdn")
    await producer.start()
    try:
        await (await producer.send_raw(topic.name, key, value, []))
    finally:
        await producer.stop()


async def consumed_to_the_end(infra: Endpoints, world: World) -> None:
    """Wait until the purge consumer has committed every record of its topic: everything
    published so far was handled and finished."""
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    records = await read_all(infra.kafka_bootstrap, world.topic.name)
    ends = Counter(r.partition for r in records)
    ends_at = {p: max(r.offset for r in records if r.partition == p) + 1 for p in ends}

    async def committed() -> dict[int, int]:
        offsets = await group_offsets(connection, world.group)
        return {tp.partition: o.offset for tp, o in offsets.items() if tp.topic == world.topic.name}

    await eventually(
        committed,
        until=lambda c: all(c.get(p, -1) >= end for p, end in ends_at.items()),
        what="the purge consumer committed to the end",
    )


async def letters(infra: Endpoints, world: World) -> list[Any]:
    found = await read_all(infra.kafka_bootstrap, DLQ.name)
    return [r for r in found if header(r, HEADER_TOPIC) == world.topic.name.encode()]


async def test_each_provider_is_purged_once_even_when_the_event_comes_twice(
    infra: Endpoints, world: World
) -> None:
    purge_id = f"deploy-{uuid.uuid4().hex[:8]}"
    values = [f"https://shop.example.com/static/{purge_id}.css"]
    event = purge(purge_id, values, [world.ok, world.flaky])
    await publish(infra, world.topic, event, event)  # a producer retry, say

    def finished(rows: list[dict[str, Any]]) -> bool:
        return len(rows) == 2 and all(r["result"] == "delivered" for r in rows)

    rows = await eventually(
        lambda: asyncio.to_thread(world.deliveries, purge_id), until=finished, what="both purged"
    )
    by_integration = {r["integration"]: r for r in rows}
    assert set(by_integration) == {purge_integration(world.ok), purge_integration(world.flaky)}
    # The flaky provider's two 503s were retried: three calls, one success.
    assert by_integration[purge_integration(world.flaky)]["attempts"] == FLAKY_FAILURES + 1
    assert by_integration[purge_integration(world.ok)]["attempts"] == 1
    assert {r["receiver"] for r in rows} == {"cdn"}

    # Later, again (a replay after a restart, a DLQ replay): nothing is purged twice.
    await publish(infra, world.topic, event)
    await consumed_to_the_end(infra, world)
    key = ",".join(values)
    assert world.api.answered(world.ok, key) == [200]
    assert world.api.answered(world.flaky, key) == [503] * FLAKY_FAILURES + [200]
    assert world.api.answered(world.refuses, key) == []  # not named by the event


async def test_a_refused_purge_is_dead_lettered_with_its_reason_and_raises_the_signal(
    infra: Endpoints, world: World
) -> None:
    purge_id = f"deploy-{uuid.uuid4().hex[:8]}"
    values = [f"https://shop.example.com/{purge_id}"]
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    await publish(infra, world.topic, purge(purge_id, values, [world.refuses, ghost, world.ok]))

    mine = await eventually(
        lambda: letters(infra, world),
        until=lambda found: len([r for r in found if r.key == purge_id.encode()]) >= 2,
        what="two dead letters",
    )
    errors = sorted(
        (header(r, HEADER_ERROR) or b"").decode() for r in mine if r.key == purge_id.encode()
    )
    assert all(header(r, HEADER_REASON) == b"delivery_failed" for r in mine)
    assert errors[0].startswith(f"cdn:{ghost}: not_configured: provider {ghost!r}")
    assert errors[1].startswith(f"cdn:{world.refuses}: deterministic: ")
    assert "403" in errors[1]
    # Refused once: a deterministic error is never retried.
    assert world.api.answered(world.refuses, ",".join(values)) == [403]
    assert world.api.answered(world.ok, ",".join(values)) == [200]

    # The dead letter's original record is the event, replayable as it is.
    letter = next(r for r in mine if (header(r, HEADER_ERROR) or b"").startswith(b"cdn:refuses"))
    assert msgspec.json.decode(letter.value, type=CdnPurgeRequested).id == purge_id

    # The catalogue's signal, with the provider and the failure class.
    async def dead_letter_signals() -> list[SignalObserved]:
        found = await read_all(infra.kafka_bootstrap, SIGNALS.name)
        decoded = [msgspec.json.decode(r.value, type=SignalObserved) for r in found]
        return [
            s
            for s in decoded
            if s.name == CDN_PURGE_DEAD_LETTERED.name
            and s.labels.get("provider") in {world.refuses, ghost}
        ]

    signals = await eventually(
        dead_letter_signals, until=lambda s: len(s) >= 2, what="dead-letter signals"
    )
    assert {(s.labels["provider"], s.labels["failure"]) for s in signals} == {
        (world.refuses, "deterministic"),
        (ghost, "not_configured"),
    }

    # The notifier's API shows them in the delivery log's terms.
    listed = world.get(f"/api/v1/dead-letters?idempotency_key={purge_key(purge_id)}")
    assert isinstance(listed, list)
    assert {row["integration"] for row in listed} == {
        purge_integration(world.refuses),
        purge_integration(ghost),
    }
    assert all(row["receiver"] == "cdn" and row["purge_id"] == purge_id for row in listed)


async def test_a_provider_that_stays_down_is_dead_lettered_at_the_retry_deadline(
    infra: Endpoints, world: World
) -> None:
    purge_id = f"deploy-{uuid.uuid4().hex[:8]}"
    values = [f"https://shop.example.com/{purge_id}"]
    await publish(infra, world.topic, purge(purge_id, values, [world.down]))
    rows = await eventually(
        lambda: asyncio.to_thread(world.deliveries, purge_id),
        until=lambda found: [r["result"] for r in found] == ["failed"],
        what="the purge given up",
    )
    (row,) = rows
    assert row["error"].startswith("retries_exhausted: retry deadline passed; last error: ")
    assert "503" in row["error"]
    calls = world.api.answered(world.down, ",".join(values))
    assert calls == [503] * row["attempts"]
    assert row["attempts"] > 1  # retried before it gave up
    found = await eventually(
        lambda: letters(infra, world),
        until=lambda rs: purge_id.encode() in {r.key for r in rs},
        what="its dead letter",
    )
    (letter,) = [r for r in found if r.key == purge_id.encode()]
    assert (header(letter, HEADER_ERROR) or b"").startswith(
        f"cdn:{world.down}: retries_exhausted: ".encode()
    )


async def test_bad_events_are_dead_lettered_and_the_consumer_goes_on(
    infra: Endpoints, world: World
) -> None:
    bad_id = f"bad-{uuid.uuid4().hex[:8]}"
    everything_with_values = CdnPurgeRequested(
        id=bad_id,
        scope=CdnPurgeScope.ALL,
        values=["https://shop.example.com/"],
        source="tests",
        requested_at=1_760_000_000.0,
    )
    await publish(infra, world.topic, everything_with_values)
    await publish_raw(infra, world.topic, b"not-json", b"{not json")
    good_id = f"after-{uuid.uuid4().hex[:8]}"
    await publish(infra, world.topic, purge(good_id, ["https://shop.example.com/x"], [world.ok]))

    await eventually(
        lambda: asyncio.to_thread(world.deliveries, good_id),
        until=lambda rows: [r["result"] for r in rows] == ["delivered"],
        what="the purge after the bad ones",
    )
    found = await eventually(
        lambda: letters(infra, world),
        until=lambda rs: {bad_id.encode(), b"not-json"} <= {r.key for r in rs},
        what="both bad events dead-lettered",
    )
    by_key = {r.key: r for r in found}
    assert (header(by_key[bad_id.encode()], HEADER_ERROR) or b"").startswith(
        b"cdn: deterministic: invalid purge: a purge of everything takes no values"
    )
    assert header(by_key[b"not-json"], HEADER_REASON) == b"invalid_json"


async def test_the_cli_publishes_a_purge_the_notifier_carries_out(
    infra: Endpoints, world: World
) -> None:
    """``opsmesh cdn purge`` as an operator runs it, to the topic this notifier consumes."""
    purge_id = f"cli-{uuid.uuid4().hex[:8]}"
    tag = f"product-{purge_id}"
    cli = Path(sys.executable).with_name("opsmesh")
    args = ["cdn", "purge", "--tag", tag, "--provider", world.ok, "--id", purge_id]
    args += ["--reason", "price change", "--topic", world.topic.name]
    done = await asyncio.to_thread(
        subprocess.run,
        [str(cli), *args, "--bootstrap", infra.kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"purge {purge_id} published to {world.topic.name} (tag)"
    rows = await eventually(
        lambda: asyncio.to_thread(world.deliveries, purge_id),
        until=lambda found: [r["result"] for r in found] == ["delivered"],
        what="the CLI's purge delivered",
    )
    assert rows[0]["integration"] == purge_integration(world.ok)
    assert world.api.answered(world.ok, tag) == [200]
