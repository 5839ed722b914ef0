"""Health checks: built-ins on real resources (a directory, a local HTTP server), results
reported to health-aggregator, and the probes an ASGI app answers through the middleware."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from opsmesh_client.client import Client
from opsmesh_client.health import (
    Result,
    callable_check,
    disk_space,
    http_dependency,
    memory,
    writable_path,
)
from opsmesh_client.integrations.asgi import OpsmeshMiddleware
from opsmesh_client.probe import Bounded, CheckFailed, redact
from opsmesh_client.settings import load
from opsmesh_client.testing import MemoryTransports
from opsmesh_client.wire import Kind


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/up" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def dependency() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_builtin_checks_on_real_resources(tmp_path: Path, dependency: str) -> None:
    assert writable_path(tmp_path)().status == "pass"
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    with pytest.raises(FileNotFoundError):
        writable_path(tmp_path / "missing")()
    space = disk_space(tmp_path, warn_below=0.0, fail_below=0.0)()
    assert space.status == "pass"
    assert 0 < float(space.observed_value or 0) <= 1
    assert disk_space(tmp_path, warn_below=1.1, fail_below=1.1)().status == "fail"
    assert http_dependency(f"{dependency}/up")().status == "pass"
    assert http_dependency(f"{dependency}/down")().status == "fail"
    assert memory(warn_above_bytes=1, fail_above_bytes=2**62)().status == "warn"


def shop() -> tuple[Client, MemoryTransports]:
    made = MemoryTransports()
    return Client(load({}, service="shop", kafka="unused:1"), transport=made, start=False), made


def test_results_are_reported_and_a_raising_check_fails() -> None:
    client, made = shop()

    def broken() -> None:
        raise ConnectionRefusedError("no database")

    client.health.add("database", callable_check(broken))
    client.health.add("cache", lambda: Result("warn", "slow"), critical=False)
    client.health.run()
    client.flush()
    reports = {r.body["check"]: r.body for r in made.transport.of(Kind.HEALTH)}
    assert reports["database"]["status"] == "fail"
    assert reports["database"]["output"] == "ConnectionRefusedError: no database"
    assert reports["database"]["critical"] is True
    assert (reports["cache"]["status"], reports["cache"]["critical"]) == ("warn", False)


async def test_the_middleware_answers_the_probes() -> None:
    client, _ = shop()
    healthy = [True]
    client.health.add("database", lambda: Result("pass" if healthy[0] else "fail"))
    client.health.add("cache", lambda: Result("fail"), critical=False)
    app = Starlette()
    app.add_middleware(OpsmeshMiddleware, client=client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
        assert (await http.get("/health/live")).status_code == 200
        assert (await http.get("/health/startup")).status_code == 503  # no round yet
        assert (await http.get("/health/ready")).status_code == 503
        client.health.run()
        assert (await http.get("/health/startup")).status_code == 200
        ready = await http.get("/health/ready")
        assert ready.status_code == 200  # the failing cache is not critical
        assert json.loads(ready.content)["checks"]["cache"]["status"] == "fail"
        healthy[0] = False
        client.health.run()
        not_ready = await http.get("/health/ready")
        assert not_ready.status_code == 503
        assert not_ready.json()["failing"] == ["database"]


def test_reasons_leave_credentials_out() -> None:
    assert redact("cannot reach postgresql://app:pw-1@db:5432/shop") == (
        "cannot reach postgresql://app:***@db:5432/shop"
    )
    assert redact("host=db password=pw-2 user=app") == "host=db password=*** user=app"
    assert redact("AccessKey: 'sk-3', token=abc") == "AccessKey: ***, token=***"
    assert redact("the key sk-4 leaked", ["sk-4"]) == "the key *** leaked"
    assert redact("line\n\tnext") == "line next"
    assert len(redact("x" * 2000)) == 500


def test_a_bounded_probe_reports_its_latency_failure_or_silence() -> None:
    assert Bounded("db", lambda: None, timeout_s=5, warn_above_ms=None)().status == "pass"
    assert Bounded("db", lambda: None, timeout_s=5, warn_above_ms=-1)().status == "warn"

    def refused() -> None:
        raise ConnectionRefusedError("postgresql://app:pw-5@db/shop refused")

    failed = Bounded("db", refused, timeout_s=5, warn_above_ms=None)()
    assert (failed.status, failed.output) == (
        "fail",
        "db: ConnectionRefusedError: postgresql://app:***@db/shop refused",
    )

    def classified() -> None:
        raise CheckFailed("storage: bucket media does not exist")

    missing = Bounded("bucket media", classified, timeout_s=5, warn_above_ms=None)()
    assert missing.output == "storage: bucket media does not exist"


def test_a_probe_that_hangs_fails_in_time_and_is_not_doubled() -> None:
    released = threading.Event()
    calls: list[int] = []

    def hangs() -> None:
        calls.append(1)
        released.wait()

    check = Bounded("cache", hangs, timeout_s=0.05, warn_above_ms=None)
    try:
        assert check() == Result("fail", "cache: no answer within 0.05 s")
        assert check() == Result("fail", "cache: still no answer to an earlier probe")
        assert len(calls) == 1
    finally:
        released.set()

    # Once the hung probe returns (its thread ends), the next round probes again.
    waiting = check._waiting
    assert waiting is not None
    waiting.join(10)
    assert check().status == "pass"
    assert len(calls) == 2
