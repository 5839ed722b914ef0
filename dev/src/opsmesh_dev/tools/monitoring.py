"""Prometheus and the exporters as child processes of ``opsmesh up`` (exporters.py says how
each is configured): the stack without containers monitored as the compose one is."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from opsmesh_dev.infra.process import free_port, spawn, terminate, wait_until
from opsmesh_dev.infra.stack import Endpoints
from opsmesh_dev.tools.exporters import (
    EXPORTERS,
    Exporter,
    exporter_command,
    prometheus_command,
    prometheus_config,
)


@dataclass
class Child:
    name: str
    port: int
    log_file: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http to our own child
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Monitoring:
    """The exporters, each on a free loopback port (only this Prometheus scrapes them, and
    a machine often runs its own node exporter on 9100), then Prometheus on
    ``prometheus_port`` (a free one if None) scraping them and ``services`` (name -> port),
    alerting to the alert-engine and remote-writing into metrics-ingest with ``token``."""

    workdir: Path
    endpoints: Endpoints
    services: Mapping[str, int]
    token: str
    prometheus_port: int | None = None
    exporters: Iterable[Exporter] = EXPORTERS
    running: dict[str, Child] = field(default_factory=dict)

    def start(self, *, timeout_s: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            for exporter in self.exporters:
                port = free_port()
                argv, env = exporter_command(exporter, port, self.endpoints)
                self._spawn(
                    exporter.job, port, argv, env, ready_path="/metrics", timeout_s=timeout_s
                )
            # Readable by this user only, from its creation (Prometheus reads it per request).
            token_file = self.workdir / "api-token"
            token_file.touch(mode=0o600)
            token_file.write_text(self.token + "\n")
            port = self.prometheus_port or free_port()
            config = prometheus_config(
                services=self.services,
                exporters={job: child.port for job, child in self.running.items()},
                prometheus_port=port,
                token_file=token_file,
            )
            config_file = self.workdir / "prometheus.yml"
            config_file.write_text(yaml.safe_dump(config, sort_keys=False))
            argv = prometheus_command(config_file, self.workdir / "prometheus-data", port)
            self._spawn("prometheus", port, argv, {}, ready_path="/-/ready", timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise

    def _spawn(
        self,
        name: str,
        port: int,
        argv: list[str],
        env: Mapping[str, str],
        *,
        ready_path: str,
        timeout_s: float,
    ) -> None:
        log_file = self.workdir / f"{name}.log"
        process = spawn(argv, log_file=log_file, env=dict(env))
        child = Child(name, port, log_file, process)
        self.running[name] = child
        wait_until(
            lambda: _answers(child.url + ready_path),
            timeout_s=timeout_s,
            what=name,
            process=process,
            log_file=log_file,
        )

    def stop(self) -> None:
        for name in reversed(list(self.running)):
            terminate(self.running.pop(name).process)
