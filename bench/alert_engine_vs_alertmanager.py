"""alert-engine against Alertmanager (Debian's ``prometheus-alertmanager``), one workload, one run.

Both get the same alerts posted to ``POST /api/v2/alerts``, the same route (``group_by:
[alertname, instance]``, ``group_wait: 0s``, ``group_interval: 1s``) and a webhook sink in
this process that records when each alert first arrives. Alertmanager sends its webhooks
itself; opsmesh goes alert-engine → Kafka → notifier → webhook.

Senders: ``--senders N`` concurrent posters, as Prometheus servers post concurrently, each
taking the next batch of ``--batch B`` alerts and awaiting its answer before the next. By
default three modes run one after the other, each on fresh infrastructure (Kafka,
PostgreSQL, Redis) and a fresh Alertmanager: 1 x 500, 8 x 256 and 8 x 64.

Workload: ``--alerts`` distinct alerts (default 20,000) in groups of ``--group-size``
(default 10, so 2,000 aggregation groups), a group's alerts contiguous in the post order.
A warm-up batch (another alertname) goes to each target first and is not measured.
Alertmanager is stopped once measured, so its timers do not run beside the engine's
measurement (the engine's processes idle beside Alertmanager's).

Reported per mode and target: alerts/s ingested (first POST sent → last response), and
the post→webhook latency per alert (its batch's POST sent → its first arrival at the
sink), p50/p99; then the bar of issue 12: throughput at least Alertmanager's, p99 no
worse, p50 under 150 ms. For the engine, where the time went: p50/p99 of each hop of
``opsmesh_alert_path_seconds`` (``opsmesh.alert_path``: ingest, persist, flush, produce,
claim, delivery), from the services' own /metrics scraped before and after the measured
alerts (the warm-up excluded), interpolated in the histogram's buckets.

``--pin`` puts the broker, PostgreSQL and Redis on core 1 and everything else (the
services, Alertmanager, this process's senders and sink) on core 0: what the same design
does when the infrastructure has its own core (``bench/pinning.py``).

    uv run python -m bench.alert_engine_vs_alertmanager [--alerts N] [--group-size G]
        [--senders N --batch B] [--split] [--pin]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.pinning import (
    INFRASTRUCTURE_CPUS,
    SERVICES_CPUS,
    check_cores,
    pin_process,
    pin_this_thread,
)
from bench.profiling import start_profilers, stop_profilers
from opsmesh.alert_path import Hop, buckets_by_hop, difference, quantile
from opsmesh_dev.infra import Endpoints, LocalStack
from opsmesh_dev.infra.process import free_port, spawn, terminate, wait_until
from opsmesh_dev.tools.mesh import Mesh

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
DEFAULT_MODES = ((1, 500), (8, 256), (8, 64))
WARMUP = 500
P50_BAR_S = 0.150
TOKEN = "bench-writer-token-0123456789abcdef"
ID_LABEL = "bench_id"


# -- the sink ---------------------------------------------------------------------------


@dataclass
class Arrivals:
    """First arrival (perf_counter) of each firing alert, by its bench id."""

    first: dict[str, float] = field(default_factory=dict)
    webhooks: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def sink_app(arrivals: dict[str, Arrivals]) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.perf_counter()
        target = arrivals[request.match_info["name"]]
        payload = json.loads(body)
        target.webhooks += 1
        for alert in payload.get("alerts", ()):
            if alert.get("status") != "firing":
                continue
            bench_id = alert.get("labels", {}).get(ID_LABEL)
            if bench_id is not None and bench_id not in target.first:
                target.first[bench_id] = now
        target.changed.set()
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/hooks/{name}", receive)
    return app


# -- the workload -----------------------------------------------------------------------


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def workload(
    prefix: str, alerts: int, group_size: int, alertnames: int = 20
) -> list[dict[str, Any]]:
    """``alerts`` distinct alerts; groups (alertname, instance) of ``group_size`` each."""
    now = _rfc3339(time.time())
    out = []
    for i in range(alerts):
        group = i // group_size
        out.append(
            {
                "labels": {
                    "alertname": f"Bench{group % alertnames:02d}",
                    "instance": f"host-{group // alertnames:05d}.bench.internal:9100",
                    "job": "node",
                    "severity": "warning",
                    "slot": str(i % group_size),
                    ID_LABEL: f"{prefix}-{i}",
                },
                "annotations": {
                    "summary": f"bench alert {i}",
                    "description": "synthetic alert posted by bench.alert_engine_vs_alertmanager",
                },
                "startsAt": now,
                "generatorURL": "http://bench.invalid/graph",
            }
        )
    return out


@dataclass
class Result:
    name: str
    alerts: int
    ingest_s: float
    latencies_s: list[float]
    missing: int
    webhooks: int
    errors: int
    # opsmesh_alert_path_seconds' buckets observed during the run, per hop (the engine's)
    hops: dict[str, dict[float, float]] = field(default_factory=dict)

    def hop(self, hop: Hop, q: float) -> float | None:
        buckets = self.hops.get(hop.value)
        return None if buckets is None else quantile(buckets, q)

    @property
    def rate(self) -> float:
        return self.alerts / self.ingest_s

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass(frozen=True, slots=True)
class Mode:
    senders: int
    batch: int

    def __str__(self) -> str:
        return f"{self.senders} x {self.batch}"


async def post_all(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    alerts: Sequence[dict[str, Any]],
    mode: Mode,
) -> tuple[float, dict[str, float], int]:
    """POST in batches from ``mode.senders`` concurrent senders; returns (seconds, post
    time per bench id, failed batches)."""
    posted_at: dict[str, float] = {}
    errors = 0
    batches = iter(range(0, len(alerts), mode.batch))

    async def sender() -> None:
        nonlocal errors
        for start in batches:  # shared: each sender takes the next batch
            batch = alerts[start : start + mode.batch]
            sent = time.perf_counter()
            for alert in batch:
                posted_at[alert["labels"][ID_LABEL]] = sent
            async with session.post(url, json=batch, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    print(f"  POST {url}: {response.status} {(await response.text())[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(mode.senders)))
    return time.perf_counter() - started, posted_at, errors


async def wait_arrivals(target: Arrivals, ids: Sequence[str], timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    wanted = set(ids)
    while not wanted.issubset(target.first.keys()):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return
        target.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(target.changed.wait(), timeout=min(remaining, 1.0))


async def measure(
    session: aiohttp.ClientSession,
    *,
    name: str,
    url: str,
    headers: dict[str, str],
    target: Arrivals,
    alerts: int,
    group_size: int,
    mode: Mode,
    timeout_s: float,
    scrape: Callable[[], Awaitable[dict[str, dict[float, float]]]] | None = None,
) -> Result:
    warmup = workload(f"{name}-warm", WARMUP, group_size, alertnames=1)
    for alert in warmup:
        alert["labels"]["alertname"] = "BenchWarmup"
    await post_all(session, url, headers, warmup, Mode(1, WARMUP))
    await wait_arrivals(target, [a["labels"][ID_LABEL] for a in warmup], 30)
    webhooks_before = target.webhooks
    hops_before = await scrape() if scrape is not None else {}

    alerts_list = workload(name, alerts, group_size)
    ids = [a["labels"][ID_LABEL] for a in alerts_list]
    ingest_s, posted_at, errors = await post_all(session, url, headers, alerts_list, mode)
    await wait_arrivals(target, ids, timeout_s)
    latencies = [target.first[i] - posted_at[i] for i in ids if i in target.first]
    hops = difference(await scrape(), hops_before) if scrape is not None else {}
    return Result(
        name=name,
        alerts=alerts,
        ingest_s=ingest_s,
        latencies_s=latencies,
        missing=alerts - len(latencies),
        webhooks=target.webhooks - webhooks_before,
        errors=errors,
        hops=hops,
    )


def scraper(
    session: aiohttp.ClientSession, urls: Sequence[str]
) -> Callable[[], Awaitable[dict[str, dict[float, float]]]]:
    """The alert path's buckets summed over the services' /metrics."""

    async def scrape() -> dict[str, dict[float, float]]:
        total: dict[str, dict[float, float]] = {}
        for url in urls:
            async with session.get(url) as response:
                text = await response.text()
            for hop, buckets in buckets_by_hop(text).items():
                into = total.setdefault(hop, {})
                for le, n in buckets.items():
                    into[le] = into.get(le, 0.0) + n
        return total

    return scrape


# -- the targets ------------------------------------------------------------------------

AM_CONFIG = """
global:
  resolve_timeout: 5m
route:
  receiver: sink
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: {url}
        send_resolved: false
"""

ENGINE_CONFIG = """
global:
  resolve_timeout: 5m
route:
  receiver: default
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: default
"""


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_alertmanager(workdir: Path, sink_url: str) -> tuple[Any, int]:
    config = workdir / "alertmanager.yml"
    config.write_text(AM_CONFIG.format(url=sink_url))
    port = free_port()
    log_file = workdir / "alertmanager.log"
    process = spawn(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        log_file=log_file,
    )
    ready = f"http://127.0.0.1:{port}/-/ready"
    wait_until(
        lambda: _http_ok(ready), timeout_s=60, what=ready, process=process, log_file=log_file
    )
    return process, port


def start_mesh(endpoints: Endpoints, workdir: Path, sink_url: str, split: bool = False) -> Mesh:
    config = workdir / "engine-am.yml"
    config.write_text(ENGINE_CONFIG)
    mesh = Mesh(
        endpoints,
        workdir / "mesh",
        env={
            "alert-engine": {
                "ALERT_ENGINE_CONFIG_FILE": str(config),
                "ALERT_ENGINE_API_TOKENS": f"{TOKEN}:write",
                "ALERT_ENGINE_OWNS_GROUPS": "false" if split else "true",
            },
            # --split: this process takes the POSTs and owns no groups; a second one
            # owns them all (persist, group, flush).
            "alert-engine#groups": {"ALERT_ENGINE_OWNS_GROUPS": "true"},
            "notifier": {
                "NOTIFIER_DEFAULT_WEBHOOK_URL": sink_url,
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
                "NOTIFIER_LANE_CONCURRENCY": "32",
            },
        },
        common_env={"OPSMESH_LOG_LEVEL": "WARNING"},
    )
    mesh.start(["alert-engine", "notifier"])
    if split:
        mesh.start_replica("alert-engine", "groups")
    return mesh


# -- main -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    mode: Mode
    am: Result
    engine: Result

    @property
    def met(self) -> bool:
        return (
            self.engine.rate >= self.am.rate
            and self.engine.pct(99) <= self.am.pct(99)
            and self.engine.pct(50) < P50_BAR_S
            and self.engine.missing == 0
        )


def report_mode(c: Comparison, group_size: int) -> None:
    print(
        f"mode {c.mode} (senders x batch): {c.am.alerts:,} distinct alerts, groups of"
        f" {group_size} (group_by [alertname, instance], group_wait 0s)"
    )
    for r in (c.am, c.engine):
        print(
            f"  {r.name:<13} ingest {r.rate:>9,.0f} alerts/s ({r.ingest_s:.2f} s)"
            f"  post→webhook p50 {r.pct(50) * 1000:>8.1f} ms  p99 {r.pct(99) * 1000:>8.1f} ms"
            f"  max {max(r.latencies_s, default=float('nan')) * 1000:>8.1f} ms"
            f"  webhooks {r.webhooks:,}  missing {r.missing:,}  failed POSTs {r.errors}"
        )
    if c.engine.hops:
        print("  alert-engine per hop (opsmesh_alert_path_seconds), p50 / p99 ms, observations:")
        for hop in Hop:
            count = c.engine.hops.get(hop.value, {}).get(float("inf"), 0.0)
            print(
                f"    {hop.value:<9} {_ms(c.engine.hop(hop, 0.5)):>8} / "
                f"{_ms(c.engine.hop(hop, 0.99)):>8}  {count:>8,.0f}"
            )


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


def report(comparisons: Sequence[Comparison]) -> None:
    """The table of issue 12, one row per mode."""
    print()
    print(
        "| senders x batch | engine / Alertmanager alerts/s"
        " | p50 engine vs AM | p99 engine vs AM | bar |"
    )
    print("|---|---|---|---|---|")
    for c in comparisons:
        e, a = c.engine, c.am
        print(
            f"| {c.mode} | {e.rate:,.0f} / {a.rate:,.0f} ({e.rate / a.rate:.2f}x)"
            f" | {e.pct(50) * 1000:,.0f} ms vs {a.pct(50) * 1000:,.0f} ms"
            f" | {e.pct(99) * 1000:,.0f} vs {a.pct(99) * 1000:,.0f} ms"
            f" | {'met' if c.met else 'NOT met'} |"
        )
    print(
        "bar (issue 12): throughput >= Alertmanager's, p99 <= Alertmanager's,"
        f" p50 < {P50_BAR_S * 1000:.0f} ms, nothing missing"
    )
    print()
    print("engine per hop, p50 / p99 ms (opsmesh_alert_path_seconds):")
    print("| senders x batch | " + " | ".join(h.value for h in Hop) + " |")
    print("|---|" + "---|" * len(Hop))
    for c in comparisons:
        cells = (f"{_ms(c.engine.hop(h, 0.5))} / {_ms(c.engine.hop(h, 0.99))}" for h in Hop)
        print(f"| {c.mode} | " + " | ".join(cells) + " |")


async def run_mode(  # noqa: PLR0917
    endpoints: Endpoints,
    workdir: Path,
    alerts: int,
    group_size: int,
    mode: Mode,
    profile: Path | None,
    split: bool = False,
) -> Comparison:
    arrivals = {"am": Arrivals(), "engine": Arrivals()}
    runner = web.AppRunner(sink_app(arrivals), access_log=None)
    await runner.setup()
    sink_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", sink_port).start()
    sink = f"http://127.0.0.1:{sink_port}/hooks"
    am_process = mesh = None
    try:
        am_process, am_port = await asyncio.to_thread(start_alertmanager, workdir, f"{sink}/am")
        mesh = await asyncio.to_thread(start_mesh, endpoints, workdir, f"{sink}/engine", split)
        engine_url = mesh.running["alert-engine"].url
        timeout = aiohttp.ClientTimeout(total=120)
        connector = aiohttp.TCPConnector(limit=max(mode.senders, 1))
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            am = await measure(
                session,
                name="alertmanager",
                url=f"http://127.0.0.1:{am_port}/api/v2/alerts",
                headers={},
                target=arrivals["am"],
                alerts=alerts,
                group_size=group_size,
                mode=mode,
                timeout_s=120,
            )
            # Measured: stop it, or it keeps re-flushing its 2,000 groups every
            # group_interval (about a quarter of a core) while the engine is measured.
            await asyncio.to_thread(terminate, am_process)
            am_process = None
            profilers = start_profilers(mesh, profile)
            metrics = [f"{service.url}/metrics" for service in mesh.running.values()]
            engine = await measure(
                session,
                name="alert-engine",
                url=f"{engine_url}/api/v2/alerts",
                headers={"Authorization": f"Bearer {TOKEN}"},
                target=arrivals["engine"],
                alerts=alerts,
                group_size=group_size,
                mode=mode,
                timeout_s=120,
                scrape=scraper(session, metrics),
            )
            stop_profilers(profilers)
        comparison = Comparison(mode, am, engine)
        report_mode(comparison, group_size)
        return comparison
    finally:
        if mesh is not None:
            await asyncio.to_thread(mesh.stop_all)
        if am_process is not None:
            terminate(am_process)
        await runner.cleanup()


def _pin(stack: LocalStack) -> None:
    pids = stack.started_pids()
    if len(pids) != 3:
        raise SystemExit(
            "--pin needs the bench's own broker, PostgreSQL and Redis (unset the "
            "OPSMESH_* endpoints)"
        )
    threads = sum(pin_process(pid, INFRASTRUCTURE_CPUS) for pid in pids)
    # The services, Alertmanager and the asyncio threads start after this, from this thread.
    pin_this_thread(SERVICES_CPUS)
    print(
        f"pinned: infrastructure ({threads} threads) on {sorted(INFRASTRUCTURE_CPUS)}, "
        f"the rest on {sorted(SERVICES_CPUS)}",
        file=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--group-size", type=int, default=10)
    parser.add_argument(
        "--senders", type=int, default=None, help="concurrent senders (with --batch: one mode)"
    )
    parser.add_argument("--batch", type=int, default=None, help="alerts per POST")
    parser.add_argument(
        "--split",
        action="store_true",
        help="two engine processes: one ingests (the POSTs), the other owns the groups",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="broker, PostgreSQL and Redis on core 1; services, Alertmanager and bench on 0",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy the engine's services into this dir"
    )
    args = parser.parse_args(argv)
    if not Path(ALERTMANAGER).exists():
        print(f"{ALERTMANAGER} not found: apt-get install prometheus-alertmanager (make deps)")
        return 2
    if (args.senders is None) != (args.batch is None):
        parser.error("--senders and --batch go together")
    if args.pin:
        check_cores()
    modes = (
        [Mode(args.senders, args.batch)]
        if args.senders is not None and args.batch is not None
        else [Mode(s, b) for s, b in DEFAULT_MODES]
    )
    comparisons = []
    for mode in modes:
        # Fresh infrastructure per mode: the last mode's alerts would otherwise be restored
        # by the engine and re-flushed beside this one's.
        workdir = Path(tempfile.mkdtemp(prefix="opsmesh-bench-am-"))
        try:
            stack = LocalStack()
            with stack as endpoints:
                if args.pin:
                    _pin(stack)
                comparisons.append(
                    asyncio.run(
                        run_mode(
                            endpoints,
                            workdir,
                            args.alerts,
                            args.group_size,
                            mode,
                            args.profile,
                            args.split,
                        )
                    )
                )
        finally:
            if args.keep:
                print(f"work directory: {workdir}", file=sys.stderr)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    report(comparisons)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
