"""The mesh supervisor: the five services as child processes on known ports.

Used by ``opsmesh up`` and the end-to-end tests, so both run the services exactly as a
deployment does (``python -m <service>``, settings from the environment).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opsmesh_dev.infra.process import free_port, listens_on, spawn, terminate, wait_until
from opsmesh_dev.infra.stack import Endpoints


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    module: str
    port_variable: str
    default_port: int


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("metrics-ingest", "metrics_ingest", "METRICS_INGEST_HTTP_PORT", 8081),
    ServiceInfo("alert-engine", "alert_engine", "ALERT_ENGINE_HTTP_PORT", 8082),
    ServiceInfo("notifier", "notifier", "NOTIFIER_HTTP_PORT", 8083),
    ServiceInfo("query-analyzer", "query_analyzer", "QUERY_ANALYZER_HTTP_PORT", 8084),
    ServiceInfo("health-aggregator", "health_aggregator", "HEALTH_AGGREGATOR_HTTP_PORT", 8085),
)
# The on-call web console: not one of the five (it reads them through their REST APIs,
# so it starts after them); ``start(["console"])`` runs it pointed at this mesh's ports.
# A child started on a free port that another process took first is started again.
PORT_ATTEMPTS = 3
# The repository's runbooks/, which the console serves (this package runs from the checkout).
RUNBOOKS_DIR = Path(__file__).resolve().parents[4] / "runbooks"
CONSOLE = ServiceInfo("console", "console", "CONSOLE_HTTP_PORT", 8086)
BY_NAME = {s.name: s for s in (*SERVICES, CONSOLE)}


@dataclass
class RunningService:
    info: ServiceInfo
    port: int
    log_file: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Mesh:
    endpoints: Endpoints
    workdir: Path
    env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # per service name
    common_env: Mapping[str, str] = field(default_factory=dict)
    fixed_ports: bool = False
    running: dict[str, RunningService] = field(default_factory=dict)
    _ports: dict[str, int] = field(default_factory=dict)

    def port(self, name: str) -> int:
        if name not in self._ports:
            info = BY_NAME[name]
            self._ports[name] = info.default_port if self.fixed_ports else free_port()
        return self._ports[name]

    def start(self, names: Iterable[str] | None = None, *, ready_timeout_s: float = 90.0) -> None:
        wanted = list(names) if names is not None else [s.name for s in SERVICES]
        for name in wanted:
            self._spawn(name)
        for name in wanted:
            self._ready_or_respawned(name, name, ready_timeout_s)

    def start_replica(self, name: str, replica: str, *, ready_timeout_s: float = 90.0) -> str:
        """Another process of the same service (same settings, own port and instance id),
        registered as ``name#replica``; returns that key."""
        key = f"{name}#{replica}"
        self._ports[key] = free_port()
        self._spawn(name, key)
        self._ready_or_respawned(name, key, ready_timeout_s)
        return key

    def _ready_or_respawned(self, name: str, key: str, ready_timeout_s: float) -> None:
        """Wait until ``key`` is ready; a child that lost its free port to another process
        before binding it (it exits: address already in use) is started again on a new
        one, up to ``PORT_ATTEMPTS`` times. Fixed ports are not changed."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self.wait_ready(key, ready_timeout_s)
                return
            except RuntimeError as exc:
                lost_port = "address already in use" in str(exc)
                if self.fixed_ports or not lost_port or attempt == PORT_ATTEMPTS:
                    raise
                self._ports[key] = free_port()
                self._spawn(name, key)

    def _spawn(self, name: str, key: str | None = None) -> RunningService:
        key = key or name
        info = BY_NAME[name]
        port = self._ports[key] if key in self._ports else self.port(name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_file = self.workdir / f"{key.replace('#', '-')}.log"
        env = {
            **self.endpoints.as_env(),
            "OPSMESH_HTTP_HOST": "127.0.0.1",
            "OPSMESH_INSTANCE_ID": f"{key}-{os.getpid()}",
            info.port_variable: str(port),
            **(self._console_env() if name == CONSOLE.name else {}),
            **(self._runbook_links() if name == "alert-engine" else {}),
            **self.common_env,
            **self.env.get(name, {}),
            **(self.env.get(key, {}) if key != name else {}),  # a replica's own overrides
        }
        process = spawn([sys.executable, "-m", info.module], log_file=log_file, env=env)
        service = RunningService(info, port, log_file, process)
        self.running[key] = service
        return service

    def _console_env(self) -> dict[str, str]:
        """The console reads the other services at this mesh's ports, and serves the
        repository's runbooks."""
        return {
            **{
                f"CONSOLE_{name.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{self.port(name)}"
                for name in ("alert-engine", "notifier", "query-analyzer", "health-aggregator")
            },
            "CONSOLE_RUNBOOKS_DIR": str(RUNBOOKS_DIR),
        }

    def _runbook_links(self) -> dict[str, str]:
        """Notifications' runbook links open this mesh's console."""
        return {"OPSMESH_RUNBOOK_BASE_URL": f"http://127.0.0.1:{self.port(CONSOLE.name)}/runbooks"}

    def wait_ready(self, name: str, timeout_s: float = 90.0) -> None:
        service = self.running[name]
        last = ["no answer"]  # the latest answer, for the timeout's message

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{service.url}/health/ready", timeout=2) as response:  # noqa: S310 - http to our own child
                    if response.status != 200:
                        return False
            except urllib.error.HTTPError as exc:
                last[0] = exc.read().decode(errors="replace")
                return False
            except OSError as exc:
                last[0] = str(exc)
                return False
            # The answer must come from our child, not from whoever holds the port now.
            if listens_on(service.process.pid, service.port):
                return True
            last[0] = f"port {service.port} is answered by another process"
            return False

        try:
            wait_until(
                ready,
                timeout_s=timeout_s,
                what=name,
                process=service.process,
                log_file=service.log_file,
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nlast answer: {last[0]}") from None

    def stop(self, name: str, *, grace_s: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        service = self.running.pop(name, None)
        if service is None:
            return None
        service.process.send_signal(signal.SIGTERM)
        try:
            return service.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            terminate(service.process, grace_s=1, sig=signal.SIGKILL)
            return None

    def kill(self, name: str) -> None:
        """SIGKILL: the crash case, no drain at all."""
        service = self.running.pop(name)
        service.process.kill()
        service.process.wait(timeout=10)

    def restart(self, name: str, *, ready_timeout_s: float = 90.0) -> None:
        self._spawn(name)
        self.wait_ready(name, ready_timeout_s)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def get_json(self, name: str, path: str) -> object:
        with urllib.request.urlopen(f"{self.running[name].url}{path}", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())
