"""The fault suite: under a steady alert load with a real webhook sink, SIGKILL each
service in turn, and stop and restart the broker, PostgreSQL and Redis with their data.

Each case counts lost and duplicated notifications against its load (see
``accounting``) and measures the time from the restart to every affected service's
``/health/ready``. It then waits until every consumer group has committed all it was
given, so a replay still to come cannot add a duplicate after the count. Allowed: 0 lost,
0 renotified; resent (the same idempotency key delivered twice) only where the notifier
itself crashes, at most one per lane worker (the send→record window, docs/services.md).
The table is printed at the end of the run and written to ``<basetemp>/faults/report.md``.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from opsmesh_dev.tools.mesh import SERVICES, Mesh
from tests.faults.accounting import DuplicateKind, received_for, tally
from tests.faults.conftest import LANE_CONCURRENCY, WRITE_TOKEN, FaultInfra, FaultSink
from tests.faults.load import Kind, LoadDriver, LoadPlan, SinkWatch, fault_id
from tests.faults.report import CaseRow, FaultReport
from tests.faults.trail import trails

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

# A restart (a few seconds down) and a longer outage that outlasts the services'
# PostgreSQL pool timeout (30 s), so their database calls fail instead of waiting.
SHORT_OUTAGE_S = 3.0
LONG_OUTAGE_S = 35.0
EVERYTHING = {Kind.API: 16, Kind.METRIC: 3, Kind.HEALTH: 3, Kind.QUERY: 2}


# Per service affected: seconds from the restart (of it, or of the part) to ready again.
Ready = dict[str, float]


@dataclass(frozen=True)
class Fault:
    """What is done to the mesh mid-load; returns each affected service's time to ready."""

    name: str
    inject: Callable[[Mesh, FaultInfra], Ready]
    groups: dict[Kind, int] = field(default_factory=lambda: {Kind.API: 20})
    resent_bound: int = 0


def sigkill(service: str) -> Callable[[Mesh, FaultInfra], Ready]:
    def inject(mesh: Mesh, _: FaultInfra) -> Ready:
        mesh.kill(service)
        restarted = time.monotonic()
        mesh.restart(service, ready_timeout_s=120)
        return {service: time.monotonic() - restarted}

    return inject


def outage(part: str, down_s: float = SHORT_OUTAGE_S) -> Callable[[Mesh, FaultInfra], Ready]:
    def inject(mesh: Mesh, infra: FaultInfra) -> Ready:
        server = getattr(infra, part)
        server.stop()
        time.sleep(down_s)  # the outage itself, not a synchronisation
        restarted = time.monotonic()
        server.start()
        return _ready_times(mesh, restarted, timeout_s=120)

    return inject


def _ready_times(mesh: Mesh, since: float, *, timeout_s: float) -> Ready:
    """Every service's seconds from ``since`` to its first ready answer, polled together
    (waiting for one after another would charge the slowest's time to the rest)."""
    times: Ready = {}
    deadline = since + timeout_s
    while len(times) < len(SERVICES):
        for info in SERVICES:
            if info.name not in times and _answers_ready(mesh, info.name):
                times[info.name] = time.monotonic() - since
        if time.monotonic() > deadline:
            for info in SERVICES:  # raises, naming the service and its last answer
                mesh.wait_ready(info.name, timeout_s=0.1)
        time.sleep(0.1)  # polling interval of a condition wait
    return times


def _answers_ready(mesh: Mesh, name: str) -> bool:
    url = f"{mesh.running[name].url}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:  # 503: not ready yet
        exc.close()
        return False
    except OSError:
        return False


CASES = [
    Fault("kill-notifier", sigkill("notifier"), resent_bound=LANE_CONCURRENCY),
    Fault(
        "kill-alert-engine",
        sigkill("alert-engine"),
        {Kind.API: 16, Kind.METRIC: 3, Kind.HEALTH: 3},
    ),
    Fault("kill-metrics-ingest", sigkill("metrics-ingest"), {Kind.API: 12, Kind.METRIC: 6}),
    Fault("kill-health-aggregator", sigkill("health-aggregator"), {Kind.API: 12, Kind.HEALTH: 6}),
    Fault("kill-query-analyzer", sigkill("query-analyzer"), {Kind.API: 12, Kind.QUERY: 4}),
    Fault("restart-redis", outage("redis"), EVERYTHING),
    Fault("restart-postgresql", outage("postgres"), EVERYTHING),
    Fault("postgresql-down-35s", outage("postgres", LONG_OUTAGE_S), EVERYTHING),
    Fault("restart-broker", outage("kafka"), EVERYTHING),
]


@pytest.mark.parametrize("fault", CASES, ids=[c.name for c in CASES])
async def test_no_notification_is_lost_or_repeated(
    fault: Fault,
    mesh_up: Mesh,
    fault_infra: FaultInfra,
    fault_sink: FaultSink,
    fault_report: FaultReport,
) -> None:
    mesh = mesh_up
    plan = LoadPlan(fault.groups)
    sink = SinkWatch(fault_sink.file)
    load = LoadDriver(
        case=fault.name,
        plan=plan,
        engine_url=f"http://127.0.0.1:{mesh.port('alert-engine')}",  # kept across restarts
        token=WRITE_TOKEN,
        bootstrap=fault_infra.kafka.bootstrap,
        sink=sink,
    )
    crashes: list[str] = []
    log_lines_before = _log_lines(mesh)
    stop_watch = asyncio.Event()
    watchdog = asyncio.create_task(_watch(mesh, crashes, stop_watch))
    load_task = asyncio.create_task(load.run())
    ready: Ready = {}
    try:
        # Mid-load: once a third of the API groups have been notified firing.
        api = [fault_id(fault.name, Kind.API, i) for i in range(plan.groups[Kind.API])]
        await _until(
            lambda: (
                load_task.done() or sink.count_seen((f, "firing") for f in api) >= len(api) // 3
            ),
            timeout_s=90,
            what="a third of the API groups notified firing",
        )
        ready = await asyncio.to_thread(fault.inject, mesh, fault_infra)
        await load_task
        # A group never notified firing cannot be notified resolved (Alertmanager sends
        # no resolve for an alert it never announced): no use waiting for those.
        given_up = set(load.stats.not_notified_before_resolve)
        expected = [
            (f, s)
            for f in plan.fault_ids(fault.name)
            for s in ("firing", "resolved")
            if f not in given_up
        ]
        await _until(
            lambda: sink.count_seen(expected) == len(expected),
            timeout_s=45,
            what="every expected notification",
            fail=False,
        )
        lag = await _drained(fault_infra.kafka.bootstrap, timeout_s=30)
    finally:
        stop_watch.set()
        await watchdog
        if not load_task.done():
            load_task.cancel()

    sink.poll()
    result = tally(plan.fault_ids(fault.name), received_for(sink.entries, f"{fault.name}."))
    row = CaseRow(
        case=fault.name,
        loads=" ".join(f"{kind}={n}" for kind, n in plan.groups.items()),
        tally=result,
        resent_bound=fault.resent_bound,
        ready=ready,
        ingest_failures=load.stats.failures(),
        lag=lag,
        log_lines=_log_lines(mesh) - log_lines_before,
        crashes=tuple(crashes),
        notes=(
            *(
                f"{f} not notified firing within {plan.notify_timeout_s}s; resolved anyway"
                for f in load.stats.not_notified_before_resolve
            ),
            *(await trails(fault_infra.kafka.bootstrap, result.lost) if result.lost else ()),
        ),
    )
    fault_report.add(row)

    assert not crashes, f"services exited on their own: {crashes}"
    assert not result.lost, f"lost notifications: {result.lost}"
    renotified = [d.describe() for d in result.duplicates if d.kind is DuplicateKind.RENOTIFIED]
    assert not renotified, f"notified twice under different idempotency keys: {renotified}"
    resent = [d.describe() for d in result.duplicates if d.kind is DuplicateKind.RESENT]
    assert len(resent) <= fault.resent_bound, (
        f"{len(resent)} resent, more than the send→record window allows"
        f" ({fault.resent_bound}): {resent}"
    )
    assert lag == "0", f"consumer groups left records uncommitted: {lag}"


def _log_lines(mesh: Mesh) -> int:
    """Lines the services have logged so far (a restart appends to the same file)."""
    files = {mesh.workdir / f"{info.name}.log" for info in SERVICES}
    return sum(f.read_bytes().count(b"\n") for f in files if f.exists())


async def _until(
    condition: Callable[[], bool], *, timeout_s: float, what: str, fail: bool = True
) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            if fail:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
            return False
        await asyncio.sleep(0.1)  # polling interval of a condition wait
    return True


async def _watch(mesh: Mesh, crashes: list[str], stop: asyncio.Event) -> None:
    """A restart-always supervisor for the services the case did not kill: a service that
    exits on its own is noted (with its exit code and last log lines) and restarted."""
    while not stop.is_set():
        for name, service in list(mesh.running.items()):
            code = service.process.poll()
            if code is None or mesh.running.get(name) is not service:
                continue
            tail = service.log_file.read_text(errors="replace").splitlines()[-15:]
            crashes.append(f"{name} exit {code}: " + " | ".join(tail))
            mesh.running.pop(name, None)
            await asyncio.to_thread(mesh.restart, name, ready_timeout_s=120)
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.2)
        except TimeoutError:
            continue


async def _drained(bootstrap: str, *, timeout_s: float) -> str:
    """Wait until every consumer group has committed up to the end of what it consumes;
    "0", or what is left per group and topic when the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = await _lag(bootstrap)
        if not left or time.monotonic() > deadline:
            return ", ".join(f"{g} {t} {n}" for (g, t), n in sorted(left.items())) or "0"
        await asyncio.sleep(0.5)  # polling interval of a condition wait


async def _lag(bootstrap: str) -> dict[tuple[str, str], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        left: dict[tuple[str, str], int] = {}
        for group, *_ in await admin.list_consumer_groups():
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            ends = await consumer.end_offsets(list(committed))
            for tp, meta in committed.items():
                behind = ends[tp] - meta.offset
                if behind > 0:
                    left[(group, tp.topic)] = left.get((group, tp.topic), 0) + behind
        return left
    finally:
        await consumer.stop()
        await admin.close()
