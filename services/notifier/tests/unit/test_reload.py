"""The notifier's receivers reload: ``POST /-/reload`` (write token) and the file watch
replace the receivers in use; a file that does not load is refused with its reason (no
secret in it) and the loaded receivers stay; unchanged receivers keep their
destinations (lanes, breakers); a removed receiver's jobs stop before their next
attempt with the reason; a lane whose destination changed finishes its queue with the
configuration it was queued with, then ends."""

from __future__ import annotations

import asyncio
import random
import textwrap
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from notifier.amtemplate import AlertmanagerTemplates
from notifier.api import add_routes
from notifier.api.auth import reload_auth
from notifier.bootstrap import SERVICES, Services
from notifier.channels.base import SendResult
from notifier.core.retry import FailureKind, RetryPolicy
from notifier.pipeline.deliver_stage import DeliverStage
from notifier.pipeline.lanes import Destination, Job, Lane, Sender
from notifier.receivers.config import ReceiverConfig
from notifier.receivers.loading import load_receivers
from notifier.receivers.reload import Loaded, ReceiversReload
from notifier.receivers.table import ReceiverTable
from notifier.samples import sample_request
from notifier.settings import NotifierSettings
from opsmesh.clock import SystemClock
from opsmesh.events.notifications import NotificationRequested
from opsmesh.reload import ConfigReloader
from opsmesh.runtime import Runtime
from opsmesh.web.tokens import ApiTokens
from opsmesh_dev.testing.clock import FakeClock

TOKEN = "notifier-reload-writer-0123456789"
SECRET_URL = "https://hooks.example.org/services/T0/B0/very-secret-token"
FIRST = textwrap.dedent(
    f"""\
    receivers:
      - name: ops
        webhook_configs: [{{url: "https://ops.example.org/hook"}}]
      - name: db
        webhook_configs: [{{url: "{SECRET_URL}"}}]
    """
)
SECOND = textwrap.dedent(
    """\
    receivers:
      - name: ops
        webhook_configs: [{url: "https://ops.example.org/hook"}]
      - name: team
        webhook_configs: [{url: "https://team.example.org/hook"}]
    """
)
FAIL_503 = SendResult(ok=False, status_code=503, failure=FailureKind.SERVER_ERROR, error="503")


@dataclass
class ScriptedChannel:
    """Answers from a script, then OK; optionally blocks until released."""

    name: str
    script: list[SendResult] = field(default_factory=list)
    gate: asyncio.Event | None = None
    sent: int = 0
    second_sent: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, _request: NotificationRequested) -> SendResult:
        if self.gate is not None:
            await self.gate.wait()
        self.sent += 1
        if self.sent == 2:
            self.second_sent.set()
        return self.script.pop(0) if self.script else SendResult(ok=True, status_code=200)


def job(dest: Destination, key: str = "k") -> Job:
    return Job(sample_request("r", key=key), dest, True, SystemClock().monotonic())


def sender(deadline_s: float, **kw: object) -> Sender:
    return Sender(
        retry=RetryPolicy(initial_s=0.01, max_s=0.02, deadline_s=deadline_s),
        clock=SystemClock(),
        stop=asyncio.Event(),
        rng=random.Random(1),
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class _Channel:
    url: str

    async def send(self, _request: object) -> SendResult:
        return SendResult(ok=True, status_code=200)


def _build(
    config: ReceiverConfig, _templates: AlertmanagerTemplates | None, generation: int
) -> list[Destination]:
    return [
        Destination(
            receiver=config.name,
            integration=integration,
            channel=_Channel(getattr(settings, "url", "")),
            send_resolved=True,
            concurrency=1,
            generation=generation,
        )
        for integration, _, settings in config.integrations()
    ]


def _never_renders() -> object:
    raise AssertionError("no Go templates in these files")


def _services(table: ReceiverTable, reloader: ConfigReloader[Loaded] | None) -> Services:
    settings = NotifierSettings()
    return Services(
        settings=settings,
        runtime=Runtime(service="notifier", settings=settings),
        table=table,
        reloader=reloader,
        stage=_lanes_only_stage(table.destinations),
        closing=AsyncExitStack(),
    )


def _lanes_only_stage(
    destinations: Callable[[str], Sequence[Destination] | None],
) -> DeliverStage:
    """A stage for its lanes alone: it records and publishes nothing."""
    return DeliverStage(
        destinations=destinations,
        delivery_log=None,  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        dead_letters=None,  # type: ignore[arg-type]
        sender=sender(deadline_s=1.0),
        clock=SystemClock(),
        registry=CollectorRegistry(),
        instance="test",
    )


@dataclass
class World:
    url: str
    path: Path
    table: ReceiverTable
    registry: CollectorRegistry
    reloader: ConfigReloader[Loaded]
    clock: FakeClock


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    path = tmp_path / "receivers.yml"
    path.write_text(FIRST)
    clock = FakeClock(1_800_000_000.0)
    table = ReceiverTable(load_receivers(str(path), None), None, _build, clock)
    registry = CollectorRegistry()
    reloader = ReceiversReload(
        table,
        default_webhook_url=None,
        language=None,
        renderer=_never_renders,  # type: ignore[arg-type]
    ).reloader(path, clock=clock, registry=registry)
    # The service's own routes and auth, over the services they read.
    app = web.Application(middlewares=[reload_auth(ApiTokens.parse(f"{TOKEN}:write"))])
    add_routes(app)
    app[SERVICES] = _services(table, reloader)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield World(str(server.make_url("")).rstrip("/"), path, table, registry, reloader, clock)
    finally:
        await server.close()


def _successful(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("notifier_config_last_reload_successful")


async def test_reload_replaces_the_receivers_and_refuses_a_bad_file(world: World) -> None:
    ops_before = world.table.destinations("ops")
    db_before = world.table.destinations("db")
    assert ops_before is not None
    assert db_before is not None
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{world.url}/-/reload") as anonymous:
            assert anonymous.status == 401
            assert "NOTIFIER_API_TOKENS" in await anonymous.text()
        read_only = ApiTokens.parse("a-token-that-only-reads-0123:read")
        assert read_only.scopes("a-token-that-only-reads-0123") == {"read"}
        world.path.write_text(SECOND)
        async with session.post(f"{world.url}/-/reload", headers=auth) as ok:
            assert ok.status == 200, await ok.text()
        assert set(world.table.receivers.by_name) == {"ops", "team"}
        # What the API shows (a read: no token), names and integrations only.
        async with session.get(f"{world.url}/api/v1/receivers") as listed:
            assert listed.status == 200
            assert await listed.json() == [
                {"name": "ops", "integrations": ["webhook-0"]},
                {"name": "team", "integrations": ["webhook-0"]},
            ]
        # Unchanged: the same destinations, so the same lanes and breakers.
        assert world.table.destinations("ops") is ops_before
        assert world.table.destinations("db") is None
        removed = world.table.removed("db")
        assert removed is not None
        assert "removed by the configuration reload at 2027-01-15T08:00:00+00:00" in removed
        assert world.table.missing("nobody") == "receiver 'nobody' is not configured"
        assert _successful(world.registry) == 1

        # A file that does not load: refused with where and why, the receivers stay,
        # and the secret on the offending line is in neither the answer nor the log.
        world.path.write_text(
            SECOND + f"  - name: broken\n    webhook_configs: [{{url: {SECRET_URL}\n"
        )
        with capture_logs() as logged:
            async with session.post(f"{world.url}/-/reload", headers=auth) as bad:
                assert bad.status == 400
                text = await bad.text()
        assert text.startswith(f"failed to reload config: {world.path}: not valid YAML")
        assert "very-secret-token" not in text
        assert set(world.table.receivers.by_name) == {"ops", "team"}
        assert _successful(world.registry) == 0
        (refused,) = [e for e in logged if e["event"] == "configuration reload refused"]
        assert refused["error"] == text.removeprefix("failed to reload config: ")
        assert "very-secret-token" not in repr(logged)

        # An unimplemented integration is refused by name, as at start.
        world.path.write_text(SECOND + "  - name: pager\n    opsgenie_configs: [{api_key: k}]\n")
        async with session.post(f"{world.url}/-/reload", headers=auth) as unimplemented:
            assert unimplemented.status == 400
            assert "opsgenie" in await unimplemented.text()
        assert set(world.table.receivers.by_name) == {"ops", "team"}

        # Back to a good file: loaded, and db's removal is forgotten once it is back.
        world.path.write_text(FIRST)
        async with session.post(f"{world.url}/-/reload", headers=auth) as again:
            assert again.status == 200
        assert world.table.removed("db") is None
        db_after = world.table.destinations("db")
        assert db_after is not None
        assert db_after[0] is not db_before[0]
        assert db_after[0].generation > db_before[0].generation
        assert _successful(world.registry) == 1
    applied = world.registry.get_sample_value(
        "notifier_config_reloads_total", {"trigger": "api", "outcome": "applied"}
    )
    assert applied == 2


async def test_without_a_receivers_file_reload_says_so() -> None:
    table = ReceiverTable(
        load_receivers(None, "https://hooks.example.org/x"), None, _build, FakeClock(0)
    )
    app = web.Application(middlewares=[reload_auth(ApiTokens.parse(f"{TOKEN}:write"))])
    add_routes(app)
    app[SERVICES] = _services(table, None)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as session:
            async with session.post(server.make_url("/-/reload"), headers=auth) as answer:
                assert answer.status == 400
                assert "NOTIFIER_RECEIVERS_FILE is not set" in await answer.text()
            async with session.get(server.make_url("/api/v1/receivers")) as listed:
                assert await listed.json() == [{"name": "default", "integrations": ["webhook-0"]}]
    finally:
        await server.close()


async def test_the_watch_follows_the_files_content(world: World) -> None:
    await world.reloader.check()
    assert set(world.table.receivers.by_name) == {"ops", "db"}
    world.path.write_text(SECOND)
    await world.reloader.check()
    assert set(world.table.receivers.by_name) == {"ops", "team"}
    world.path.write_text("receivers: [{name: x, webhook_configs: [{url: 'ftp://x'}]}]\n")
    await world.reloader.check()
    assert set(world.table.receivers.by_name) == {"ops", "team"}
    assert _successful(world.registry) == 0
    await world.reloader.check()  # the same refused content is not tried again
    refused = world.registry.get_sample_value(
        "notifier_config_reloads_total", {"trigger": "file_changed", "outcome": "refused"}
    )
    assert refused == 1


async def test_a_removed_receivers_jobs_stop_before_their_next_attempt() -> None:
    gone: set[str] = set()

    def removed(name: str) -> str | None:
        return (
            f"receiver {name!r} was removed by the configuration reload" if name in gone else None
        )

    channel = ScriptedChannel("webhook-0", [FAIL_503] * 3)
    retrying = job(
        Destination(
            receiver="r",
            integration="webhook-0",
            channel=channel,
            send_resolved=True,
            concurrency=1,
        )
    )
    the_sender = sender(deadline_s=60.0, removed=removed)
    task = asyncio.create_task(the_sender.send(retrying))
    async with asyncio.timeout(5):
        await channel.second_sent.wait()
    gone.add("r")
    async with asyncio.timeout(5):
        result = await task
    assert result.failure is FailureKind.NOT_CONFIGURED
    assert result.error is not None
    assert "removed by the configuration reload; not sent again" in result.error
    assert "503" in result.error
    assert retrying.attempts < 4  # stopped, not retried to the end of its script

    queued = job(
        Destination(
            receiver="r",
            integration="webhook-0",
            channel=ScriptedChannel("webhook-0"),
            send_resolved=True,
            concurrency=1,
        )
    )
    never = await the_sender.send(queued)
    assert never.failure is FailureKind.NOT_CONFIGURED
    assert queued.attempts == 0


async def test_a_retired_lane_finishes_its_queue_then_ends() -> None:
    gate = asyncio.Event()
    channel = ScriptedChannel("webhook-0", gate=gate)
    old = Destination(
        receiver="r", integration="webhook-0", channel=channel, send_resolved=True, concurrency=1
    )
    done: list[Job] = []

    async def process(the_job: Job) -> None:
        await the_job.destination.channel.send(the_job.request)
        done.append(the_job)

    lane = Lane(old, process=process, max_pending=10)
    stop = asyncio.Event()
    lane.start(stop)
    for key in ("a", "b", "c"):
        assert lane.submit(job(old, key))
    lane.retire()
    assert not lane.finished
    gate.set()
    async with asyncio.timeout(5):
        await lane.join()
    assert lane.finished
    assert [j.request.idempotency_key for j in done] == ["a", "b", "c"]
    assert all(j.destination is old for j in done)


async def test_the_stage_gives_a_changed_destination_a_new_lane() -> None:
    """A newer destination (a reload changed the receiver) replaces the lane, which ends
    once its queue is done; an older one (planned just before the reload) gets a lane of
    its own that ends after its job; a lane whose receiver is gone is retired."""
    current: dict[str, list[Destination]] = {}
    stage = _lanes_only_stage(current.get)

    def made(generation: int) -> Destination:
        return Destination(
            receiver="r",
            integration="webhook-0",
            channel=ScriptedChannel("webhook-0"),
            send_resolved=True,
            concurrency=1,
            generation=generation,
        )

    old, new = made(1), made(2)
    current["r"] = [old]
    first = stage._lane(old)
    assert stage._lane(old) is first
    current["r"] = [new]
    second = stage._lane(new)
    assert second is not first
    assert stage._lane(new) is second
    late = stage._lane(old)  # a job planned with the old configuration
    assert late is not first
    assert late is not second
    assert stage._lane(new) is second
    del current["r"]
    stage._retire_stale()
    assert stage._lanes == {}
    async with asyncio.timeout(5):
        for lane in (first, second, late):
            await lane.join()  # every one ends: nothing queued
    assert all(lane.finished for lane in (first, second, late))
