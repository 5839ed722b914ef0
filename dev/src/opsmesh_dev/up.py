"""``opsmesh up``: the whole mesh on this machine, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import click

from opsmesh.db.migrations import apply_all
from opsmesh_dev.infra.process import port_open, spawn, terminate, wait_until
from opsmesh_dev.infra.stack import Endpoints, LocalStack
from opsmesh_dev.tools.demo_db import DEMO_PG_DATABASE, create_demo_database
from opsmesh_dev.tools.exporters import PROMETHEUS_PORT, missing_binaries
from opsmesh_dev.tools.mesh import CONSOLE, SERVICES, Mesh
from opsmesh_dev.tools.monitoring import Monitoring
from opsmesh_dev.tools.run_env import remove_env, stable_token, write_env
from opsmesh_dev.tools.shop import SHOP_PORT, start_load, start_shop

SINK_PORT = 8099


def _rules_files() -> str:
    """The demo rule (fast timings, so the demo incident fires it within a minute) and the
    built-in rules as `opsmesh setup-default-alerts` installs them (the query, health and
    pipeline rules fire from the demo shop's traffic too)."""
    demo = resources.files("opsmesh_dev.tools.resources") / "demo-rules.yml"
    builtin = resources.files("alert_engine.builtin_rules") / "default.yml"
    return f"{demo},{builtin}"


def ports_in_use() -> list[int]:
    """Which of the fixed ports `opsmesh up` serves on are taken."""
    fixed = (*(s.default_port for s in (*SERVICES, CONSOLE)), SINK_PORT, SHOP_PORT)
    return [port for port in fixed if port_open(port)]


def run_up(workdir: Path, *, demo: bool) -> int:
    run_dir = (workdir / time.strftime("run-%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    busy = ports_in_use()
    if busy:
        click.echo(f"ports already in use: {busy}; stop what holds them and retry", err=True)
        return 1
    stopping = False

    def request_stop(signum: int, _: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    stack = LocalStack(run_dir / "infra", keep_workdir=True)
    # The write token of the APIs (amtool, curl, the console's login), the same for every
    # run in this work directory; printed below and in the env file.
    token = stable_token(workdir)
    mesh: Mesh | None = None
    children = []
    try:
        click.echo("starting Kafka, PostgreSQL and Redis ...")
        endpoints = stack.start()
        asyncio.run(apply_all(endpoints.pg_dsn))
        click.echo("creating the demo shop's database ...")
        shop_dsn = create_demo_database(endpoints.pg_dsn)
        notifications = run_dir / "notifications.jsonl"
        children.append(_start_sink(run_dir, notifications))
        mesh = Mesh(
            endpoints,
            run_dir / "logs",
            fixed_ports=True,
            env=_mesh_env(token, shop_dsn),
        )
        click.echo("starting the services ...")
        mesh.start()
        mesh.start([CONSOLE.name])
        monitoring = _start_monitoring(run_dir, endpoints, mesh, token)
        # Stopped before the services they watch, Prometheus first.
        children += [c.process for c in monitoring.running.values()] if monitoring else []
        demo_processes = _start_demo(shop_dsn, endpoints.kafka_bootstrap, run_dir) if demo else []
        children += demo_processes
        shop = demo_processes[0] if demo_processes else None
        _print_banner(
            mesh, monitoring, endpoints.as_env(), notifications, run_dir, demo=demo, token=token
        )
        env_file = write_env(workdir, _second_terminal_env(mesh, endpoints, token))
        click.echo(f"In another terminal: source {env_file}")
        seen = 0
        while not stopping:
            seen = _echo_new_notifications(notifications, seen)
            if _something_exited(mesh, shop, run_dir):
                stopping = True  # never reset: a Ctrl-C may have set it meanwhile
            time.sleep(0.5)  # the supervisor's polling interval (notifications, exits)
        return 0
    finally:
        click.echo("stopping ...")
        remove_env(workdir)
        for child in reversed(children):
            terminate(child, grace_s=10)
        if mesh is not None:
            mesh.stop_all()
        stack.stop()
        click.echo(f"stopped; logs in {run_dir}")


def _start_sink(run_dir: Path, notifications: Path) -> subprocess.Popen[bytes]:
    """The webhook sink the notifier delivers to, once it listens."""
    sink = spawn(
        [
            sys.executable,
            "-m",
            "opsmesh_dev.tools.sink",
            "--port",
            str(SINK_PORT),
            "--out",
            str(notifications),
        ],
        log_file=run_dir / "sink.log",
    )
    try:
        wait_until(lambda: port_open(SINK_PORT), timeout_s=20, what="webhook sink", process=sink)
    except BaseException:
        terminate(sink, grace_s=5)
        raise
    return sink


def _start_demo(shop_dsn: str, bootstrap: str, run_dir: Path) -> list[subprocess.Popen[bytes]]:
    """The demo shop, then its load generator."""
    click.echo("starting the demo shop (migrating its tables) and its load ...")
    shop = start_shop(shop_dsn, bootstrap, run_dir)
    return [shop, start_load(run_dir)]


def _second_terminal_env(mesh: Mesh, endpoints: Endpoints, token: str) -> dict[str, str]:
    """The run's addresses and write token, as the CLI (``opsmesh health-check``, ``dlq``,
    ``backup``, ``migrate``) and curl read them."""
    urls = {name: service.url for name, service in mesh.running.items()}
    return {
        **endpoints.as_env(),
        "OPSMESH_API_TOKEN": token,
        **{f"OPSMESH_{name.upper().replace('-', '_')}_URL": url for name, url in urls.items()},
        "OPSMESH_HEALTH_CHECK_SERVICES": " ".join(f"{name}={url}" for name, url in urls.items()),
    }


def _mesh_env(token: str, shop_dsn: str) -> dict[str, dict[str, str]]:
    """Each service's settings under ``opsmesh up``: the run's token, demo timings, the
    shop's database for query-analyzer, the webhook sink for the notifier."""
    return {
        "metrics-ingest": {
            # HTTP ingest and Prometheus's remote write take the run's token.
            "METRICS_INGEST_API_TOKEN": token,
            "METRICS_INGEST_WINDOWS_S": "5,60",
            "METRICS_INGEST_ALLOWED_LATENESS_S": "1",
            "METRICS_INGEST_IDLE_GRACE_S": "2",
        },
        "alert-engine": {
            "ALERT_ENGINE_API_TOKENS": f"{token}:write",
            "ALERT_ENGINE_RULES_FILES": _rules_files(),
            "ALERT_ENGINE_GROUP_WAIT": "2s",
            "ALERT_ENGINE_GROUP_INTERVAL": "10s",
            "ALERT_ENGINE_REPEAT_INTERVAL": "1h",
        },
        "query-analyzer": {
            "QUERY_ANALYZER_TARGET_DSN": shop_dsn,
            "QUERY_ANALYZER_TARGET_DATABASE": DEMO_PG_DATABASE,
            "QUERY_ANALYZER_ANALYSIS_INTERVAL_S": "15",
            # The shop's tables are small (200k orders): its scan of the orders
            # takes tens of milliseconds, under the 100 ms a production floor has.
            "QUERY_ANALYZER_SLOW_MEAN_MS": "5",
            "QUERY_ANALYZER_TRACE_SETTLE_S": "2",
        },
        "notifier": {
            "NOTIFIER_DEFAULT_WEBHOOK_URL": f"http://127.0.0.1:{SINK_PORT}/hooks/default",
            "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
            "NOTIFIER_API_TOKENS": f"{token}:write",
        },
        # The same token logs in to the console, which sends it on with silences
        # (to the alert-engine) and dead letters' replays (to the notifier).
        "console": {"CONSOLE_API_TOKENS": f"{token}:write"},
    }


def _start_monitoring(
    run_dir: Path, endpoints: Endpoints, mesh: Mesh, token: str
) -> Monitoring | None:
    """Prometheus and the exporters, as the compose stack runs them, when Debian's packages
    are installed (make deps) and Prometheus's port is free (another Prometheus there is
    left alone; the exporters take free ports, only this Prometheus scrapes them)."""
    missing = missing_binaries()
    if missing or port_open(PROMETHEUS_PORT):
        why = (
            f"{', '.join(missing)} not installed (make deps installs them)"
            if missing
            else f"port {PROMETHEUS_PORT} is in use"
        )
        click.echo(f"Prometheus and the exporters are not started: {why}")
        return None
    click.echo("starting Prometheus and the exporters ...")
    monitoring = Monitoring(
        run_dir / "monitoring",
        endpoints,
        services={name: mesh.port(name) for name in mesh.running},
        token=token,
        prometheus_port=PROMETHEUS_PORT,
    )
    monitoring.start()
    return monitoring


def _something_exited(mesh: Mesh, shop: subprocess.Popen[bytes] | None, run_dir: Path) -> bool:
    """Whether a service or the demo shop exited (said on stderr): the demo is then over."""
    exited = False
    for name, service in mesh.running.items():
        if service.process.poll() is not None:
            click.echo(
                f"{name} exited ({service.process.returncode}); see {service.log_file}", err=True
            )
            exited = True
    if shop is not None and shop.poll() is not None:
        click.echo(f"the demo shop exited ({shop.returncode}); see {run_dir}/shop.log", err=True)
        exited = True
    return exited


def _print_banner(
    mesh: Mesh,
    monitoring: Monitoring | None,
    env: dict[str, str],
    notifications: Path,
    run_dir: Path,
    *,
    demo: bool,
    token: str,
) -> None:
    lines = ["", "opsmesh is up.", ""]
    for name, service in mesh.running.items():
        lines.append(
            f"  {name:<18} {service.url}   ({service.url}/health/ready, {service.url}/metrics)"
        )
    lines += [
        "",
        f"  console:       http://127.0.0.1:{mesh.port(CONSOLE.name)}/ (log in with the token)",
        f"  alerts:        http://127.0.0.1:{mesh.port('alert-engine')}/api/v1/alerts",
        f"  top queries:   http://127.0.0.1:{mesh.port('query-analyzer')}/api/v1/queries",
        f"  services:      http://127.0.0.1:{mesh.port('health-aggregator')}/api/v1/services",
        f"  notifications: webhook sink http://127.0.0.1:{SINK_PORT}/hooks, file {notifications}",
        *(
            [
                f"  demo shop:     http://127.0.0.1:{SHOP_PORT}/customers/ (Django, examples/shop),"
                f" /health/ready; its load generator requests it",
                f"  profiles:      http://127.0.0.1:{mesh.port('query-analyzer')}"
                "/api/v1/profiles?service=shop",
            ]
            if demo
            else []
        ),
        f"  Alertmanager API: http://127.0.0.1:{mesh.port('alert-engine')}/api/v2"
        f" (write token: {token})",
        *_monitoring_lines(monitoring),
        "",
        *(f"  {k}={v}" for k, v in env.items()),
        f"  logs:          {run_dir}",
        "",
        "The shop's load trips HighErrorRate within a minute (its boom/ page) and resolves it"
        " after ~25 s; NPlusOneDetected (its customers/ page) and MissingIndexAdvised (its"
        f" orders by customer, on {DEMO_PG_DATABASE!r}) fire within a minute or two too."
        if demo
        else "The demo shop and its load are off.",
        "Ctrl-C stops everything.",
        "",
    ]
    click.echo("\n".join(lines))


def _monitoring_lines(monitoring: Monitoring | None) -> list[str]:
    if monitoring is None:
        return []
    prometheus = monitoring.running["prometheus"]
    exporters = ", ".join(
        f"{name} {child.url}/metrics"
        for name, child in monitoring.running.items()
        if name != "prometheus"
    )
    return [
        f"  Prometheus:    {prometheus.url} (config {monitoring.workdir / 'prometheus.yml'})",
        f"  exporters:     {exporters}",
        "  (Prometheus's Watchdog alert always fires: its notification shows the path works)",
    ]


def _echo_new_notifications(path: Path, seen: int) -> int:
    if not path.exists():
        return seen
    lines = path.read_text().splitlines()
    for line in lines[seen:]:
        entry = json.loads(line)
        payload = entry["payload"]
        names = ", ".join(sorted({a["labels"].get("alertname", "?") for a in payload["alerts"]}))
        click.echo(
            f"notification: {payload['status']:<8} {names} "
            f"({payload.get('notificationReason')}, {len(payload['alerts'])} alert(s))"
        )
    return len(lines)
