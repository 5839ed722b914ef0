"""`opsmesh up` as a new user runs it: its own Kafka, PostgreSQL and Redis, the five
services, and the demo shop (``examples/shop``, a Django application with the producer
SDK) under its load generator. Every service is seen at work on what the shop sends: the
error-rate incident fires and resolves, query-analyzer explains the shop's queries and
validates an index with HypoPG, the N+1 page and the missing index page, the shop's
checkout is profiled and its database check is on the health board."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.process import port_open, terminate
from opsmesh_dev.tools.demo_db import DEMO_PG_DATABASE
from opsmesh_dev.tools.exporters import EXPORTERS, PROMETHEUS_PORT
from opsmesh_dev.tools.mesh import BY_NAME, CONSOLE
from opsmesh_dev.tools.shop import SHOP_PORT
from opsmesh_dev.up import ports_in_use
from tests.e2e.console_fixtures import CHROMIUM, FLAGS

# Starting a whole stack, then waiting for the demo incident and the first analysis.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

# Stack start (~30 s), the first incident (20 s healthy + 5 s `for`), the first analysis.
FIRST_FIRING_S = 180.0


class Demo:
    def __init__(self, process: subprocess.Popen[bytes], workdir: Path) -> None:
        self.process = process
        self.workdir = workdir

    def notifications(self) -> list[dict[str, Any]]:
        runs = sorted(self.workdir.glob("run-*/notifications.jsonl"))
        if not runs:
            return []
        return [json.loads(line)["payload"] for line in runs[-1].read_text().splitlines()]

    def seen(self, alertname: str, status: str) -> bool:
        return any(
            payload["status"] == status
            and any(a["labels"].get("alertname") == alertname for a in payload["alerts"])
            for payload in self.notifications()
        )

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            assert self.process.poll() is None, f"opsmesh up exited: {self.output()}"
            assert time.monotonic() < deadline, f"{what} not seen within {timeout_s} s"
            time.sleep(0.5)  # polling a file another process appends to

    def output(self) -> str:
        log = self.workdir / "up.log"
        return log.read_text()[-4000:] if log.exists() else ""


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    busy = ports_in_use() + ([PROMETHEUS_PORT] if port_open(PROMETHEUS_PORT) else [])
    if busy:
        pytest.fail(f"`opsmesh up` needs its fixed ports; in use: {busy}")
    # Readable by all: PostgreSQL runs as its own user when the tests run as root.
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-up-"))
    workdir.chmod(0o755)
    # As a user runs it: its own Kafka, PostgreSQL and Redis, not the tests' ones.
    env = {k: v for k, v in os.environ.items() if k not in Endpoints("", "", "").as_env()}
    with (workdir / "up.log").open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "opsmesh"), "up", "--workdir", str(workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    running = Demo(process, workdir)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                terminate(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.load(response)


def test_the_demo_trips_the_error_rate_and_query_rules(demo: Demo) -> None:
    demo.wait_for(
        "HighErrorRate firing", lambda: demo.seen("HighErrorRate", "firing"), FIRST_FIRING_S
    )
    demo.wait_for("NPlusOneDetected", lambda: demo.seen("NPlusOneDetected", "firing"), 60)
    demo.wait_for("MissingIndexAdvised", lambda: demo.seen("MissingIndexAdvised", "firing"), 60)
    # The incident lasts 25 s; the rule resolves when the ratio drops.
    demo.wait_for("HighErrorRate resolved", lambda: demo.seen("HighErrorRate", "resolved"), 90)


def test_query_analyzer_shows_plans_and_validated_advice(demo: Demo) -> None:
    port = BY_NAME["query-analyzer"].default_port

    def validated() -> list[dict[str, Any]]:
        found = _get(port, f"/api/v1/recommendations?database={DEMO_PG_DATABASE}&actionable=true")
        return [r for r in found if r["validated"] and r["table_name"] == "shop_order"]

    demo.wait_for("a validated recommendation on shop_order", lambda: bool(validated()), 90)
    (advice, *_) = validated()
    assert advice["columns"] == ["customer_id"]
    assert advice["ddl"].startswith("CREATE INDEX CONCURRENTLY")
    assert advice["cost_after"] < advice["cost_before"]
    query = _get(port, f"/api/v1/queries/{advice['fingerprint']}")
    assert query["plans"], "the EXPLAIN plan behind the advice is shown with the query"


def test_the_shop_is_profiled_and_on_the_health_board(demo: Demo) -> None:
    assert _get(SHOP_PORT, "/health/ready")["status"] == "pass"
    analyzer = BY_NAME["query-analyzer"].default_port

    def checkout() -> list[dict[str, Any]]:
        routes = _get(analyzer, "/api/v1/profiles?service=shop")
        return [r for r in routes if r["route"] == "checkout/<int:cart>/"]

    demo.wait_for("the checkout's profile", lambda: bool(checkout()), 60)
    assert checkout()[0]["functions"][0]["function"] == "checkout_totals"
    board = _get(BY_NAME["health-aggregator"].default_port, "/api/v1/services/shop")
    assert {c["check"] for c in board["checks"]} >= {"heartbeat", "database"}


def test_the_console_shows_the_demo_alert_and_the_query_plan_behind_it(
    demo: Demo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """In Chromium, as an on-call engineer opens it: the demo's MissingIndexAdvised firing
    on the alerts page, then the query behind it with its EXPLAIN plan as a tree, the
    costly node marked, and the validated index advice."""
    shots = tmp_path_factory.getbasetemp() / "console-screenshots"
    shots.mkdir(exist_ok=True)
    console = f"http://127.0.0.1:{CONSOLE.default_port}"
    port = BY_NAME["query-analyzer"].default_port
    [advice, *_] = [
        r
        for r in _get(port, f"/api/v1/recommendations?database={DEMO_PG_DATABASE}&actionable=true")
        if r["validated"]
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(base_url=console)
            page.goto('/alerts?filter=alertname%3D"MissingIndexAdvised"')
            expect(page.get_by_role("link", name="MissingIndexAdvised").first).to_be_visible(
                timeout=30_000
            )
            page.screenshot(path=shots / "demo-alerts.png", full_page=True)
            page.goto(f"/queries/{advice['fingerprint']}")
            expect(page.get_by_test_id("plan").first).to_be_visible()
            expect(page.locator(".plan-node.costly").first).to_be_visible()
            expect(page.get_by_text(advice["ddl"]).first).to_be_visible()
            page.screenshot(path=shots / "demo-query-plan.png", full_page=True)
        finally:
            browser.close()


def test_prometheus_scrapes_the_mesh_and_the_exporters(demo: Demo) -> None:
    """Debian's prometheus and exporters are installed (make deps): `opsmesh up` runs them as
    the compose stack does, every job is up, and Prometheus's always-firing Watchdog reaches
    the webhook sink through the alert-engine, sent with the run's token."""
    expected = {*BY_NAME, "apps", "prometheus", *(e.job for e in EXPORTERS)}

    def every_job_up() -> bool:
        try:
            result = _get(PROMETHEUS_PORT, "/api/v1/query?query=up")["data"]["result"]
        except OSError:
            return False
        up = {s["metric"]["job"]: s["value"][1] for s in result}
        return set(up) == expected and set(up.values()) == {"1"}

    demo.wait_for("every Prometheus job up", every_job_up, 60)
    demo.wait_for("Prometheus's Watchdog notified", lambda: demo.seen("Watchdog", "firing"), 60)


def test_a_second_terminal_sources_the_run_and_its_health_check_passes(demo: Demo) -> None:
    """The env file `opsmesh up` prints: sourced by a shell, `opsmesh health-check` finds
    the run's services, broker, database and Redis by it alone, with the run's token."""
    env_file = demo.workdir / "current" / "env"
    demo.wait_for("the env file", env_file.exists, 60)
    token = (demo.workdir / "api-token").read_text().strip()
    assert f"export OPSMESH_API_TOKEN={token}" in env_file.read_text()
    opsmesh = Path(sys.executable).parent / "opsmesh"
    answer = subprocess.run(
        ["bash", "-c", f"source {env_file} && {opsmesh} health-check --json"],
        env={"PATH": "/usr/bin:/bin"},  # nothing of the tests' own environment
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(answer.stdout)
    failed = [c for c in report["checks"] if c["status"] != "ok"]
    assert answer.returncode == 0, failed
    checked = {c["target"] for c in report["checks"] if c["check"] == "service"}
    assert checked == {*BY_NAME, CONSOLE.name}


def test_ctrl_c_stops_everything(demo: Demo) -> None:
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=60) == 0, demo.output()
    assert "stopped; logs in" in demo.output()
    assert not ports_in_use(), "a process of the demo outlived it"
    assert not port_open(PROMETHEUS_PORT), "Prometheus outlived the demo"
    assert not (demo.workdir / "current" / "env").exists(), "a stopped run's env file is left"
