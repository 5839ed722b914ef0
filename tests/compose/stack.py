"""The compose stack under test: compose/docker-compose.yml, run with docker-compose exactly
as its README tells a user, under a project name of its own (so a user's ``opsmesh`` stack
and its volumes are never touched), with each step's duration recorded."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
PROJECT = "opsmeshtest"
# The healthchecks' retries and start periods bound a healthy start; past this something
# is wrong, not slow.
HEALTHY_WITHIN_S = 300.0


@dataclass
class Timings:
    steps: list[tuple[str, float]] = field(default_factory=list)
    # Per service: seconds from `docker-compose up` to its container running and healthy.
    startup: list[tuple[str, float, float | None]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((name, time.monotonic() - started))

    def table(self) -> str:
        width = max((len(name) for name, _ in self.steps), default=0)
        lines = [f"  {name:<{width}}  {seconds:7.1f} s" for name, seconds in self.steps]
        total = sum(seconds for _, seconds in self.steps)
        lines.append(f"  {'total':<{width}}  {total:7.1f} s")
        if self.startup:
            lines.append("  seconds after `docker-compose up`: running, healthy")
            lines += [
                f"    {name:<18} {started:6.1f}  {'-' if healthy is None else f'{healthy:6.1f}'}"
                for name, started, healthy in self.startup
            ]
        return "\n".join(lines)


def compose(*args: str, timeout_s: float = 600.0, check: bool = True) -> str:
    """``docker-compose -p opsmeshtest ARGS`` in compose/; its output, or an error with it."""
    result = subprocess.run(
        ["docker-compose", "-p", PROJECT, *args],
        cwd=COMPOSE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker-compose {' '.join(args)} exited {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )
    return result.stdout


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def project_containers(all_states: bool = True) -> list[dict[str, Any]]:
    """``docker inspect`` of every container of the project (stopped ones too)."""
    ids = docker(
        "ps", *(["-a"] if all_states else []), "-q",
        "--filter", f"label=com.docker.compose.project={PROJECT}",
    ).split()  # fmt: skip
    if not ids:
        return []
    # A container removed between the two calls is left out (inspect exits 1 for it).
    found = subprocess.run(
        ["docker", "inspect", *ids], capture_output=True, text=True, timeout=60, check=False
    )
    containers: list[dict[str, Any]] = json.loads(found.stdout or "[]")
    return containers


def not_yet_healthy(containers: list[dict[str, Any]]) -> dict[str, str]:
    """Service -> state, for every container that is not where a started stack has it:
    healthy (a healthcheck), running (none), or exited 0 (the one-shot ``tokens``)."""
    waiting = {}
    for info in containers:
        service = info["Config"]["Labels"]["com.docker.compose.service"]
        state = info["State"]
        if service == "tokens":
            if state["Status"] != "exited" or state["ExitCode"] != 0:
                waiting[service] = f"{state['Status']} (exit {state['ExitCode']})"
        elif "Health" in state:
            if state["Health"]["Status"] != "healthy":
                waiting[service] = state["Health"]["Status"]
        elif state["Status"] != "running":
            waiting[service] = state["Status"]
    return waiting


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def eventually(what: str, probe: Callable[[], Any], timeout_s: float, every_s: float = 0.5) -> Any:
    """Polls ``probe`` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


def up_with_timeline(timeout_s: float = 600.0) -> list[tuple[str, float, float | None]]:
    """``docker-compose up -d``, watching the project's containers meanwhile: per service,
    the seconds from ``up`` to the container running and to its first healthy probe."""
    started_at = time.monotonic()
    running: dict[str, float] = {}
    healthy: dict[str, float] = {}
    process = subprocess.Popen(
        ["docker-compose", "-p", PROJECT, "up", "-d"],
        cwd=COMPOSE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def all_healthy() -> bool:
        """Notes when each container first runs and passes its healthcheck."""
        now = time.monotonic() - started_at
        containers = project_containers()
        for info in containers:
            service = info["Config"]["Labels"]["com.docker.compose.service"]
            if info["State"]["Status"] in ("running", "exited"):
                running.setdefault(service, now)
            if info["State"].get("Health", {}).get("Status") == "healthy":
                healthy.setdefault(service, now)
        return bool(containers) and not not_yet_healthy(containers)

    while process.poll() is None:
        all_healthy()
        if time.monotonic() - started_at > timeout_s:
            process.kill()
        time.sleep(0.5)
    output = process.stdout.read() if process.stdout else ""
    if process.stdout:
        process.stdout.close()
    if process.returncode != 0:
        raise AssertionError(f"docker-compose up -d exited {process.returncode}:\n{output[-4000:]}")
    eventually("every service healthy", all_healthy, HEALTHY_WITHIN_S)
    return sorted(
        ((name, at, healthy.get(name)) for name, at in running.items()), key=lambda row: row[1]
    )
