"""Prometheus's configuration and the exporters' command lines under ``opsmesh up``: the
compose stack's jobs, rules, alerting and remote write, pointed at this machine's ports,
and accepted by Debian's promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from opsmesh_dev.infra.stack import Endpoints
from opsmesh_dev.tools.exporters import (
    BLACKBOX,
    EXPORTERS,
    NODE,
    POSTGRES,
    REDIS,
    RULES_DIR,
    blackbox_config,
    exporter_command,
    postgres_exporter_dsn,
    prometheus_command,
    prometheus_config,
)
from opsmesh_dev.tools.mesh import CONSOLE, SERVICES

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose"
SERVICE_PORTS = {s.name: 18000 + i for i, s in enumerate((*SERVICES, CONSOLE))}
EXPORTER_PORTS = {e.job: 19000 + i for i, e in enumerate(EXPORTERS)}
ENDPOINTS = Endpoints(
    "127.0.0.1:9092",
    "postgresql://opsmesh:secret@127.0.0.1:5432/opsmesh",
    "redis://127.0.0.1:6379/0",
)


def _config(tmp_path: Path) -> dict[str, Any]:
    return prometheus_config(
        services=SERVICE_PORTS,
        exporters=EXPORTER_PORTS,
        prometheus_port=19090,
        token_file=tmp_path / "api-token",
    )


def _compose_prometheus() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    return config


def _shape(job: dict[str, Any]) -> dict[str, Any]:
    """A job without its addresses."""
    relabel = [
        {k: v for k, v in step.items() if k != "replacement"}
        for step in job.get("relabel_configs", [])
    ]
    return {
        "metrics_path": job.get("metrics_path", "/metrics"),
        "params": job.get("params"),
        "honor_labels": job.get("honor_labels", False),
        "relabel": relabel,
        "targets": len([t for s in job["static_configs"] for t in s["targets"]]),
    }


def test_the_jobs_are_the_compose_stacks_at_this_machines_ports(tmp_path: Path) -> None:
    ours = {job["job_name"]: job for job in _config(tmp_path)["scrape_configs"]}
    theirs = {job["job_name"]: job for job in _compose_prometheus()["scrape_configs"]}
    assert set(ours) == set(theirs)
    for name, job in ours.items():
        assert _shape(job) == _shape(theirs[name]), name
    targets = {
        name: [t for s in j["static_configs"] for t in s["targets"]] for name, j in ours.items()
    }
    for name, port in SERVICE_PORTS.items():
        assert targets[name] == [f"127.0.0.1:{port}"]
        assert f"http://127.0.0.1:{port}/health/ready" in targets["blackbox"]
    for job, port in EXPORTER_PORTS.items():
        if job != BLACKBOX.job:
            assert targets[job] == [f"127.0.0.1:{port}"]
    (to_exporter,) = [s for s in ours["blackbox"]["relabel_configs"] if "replacement" in s]
    assert to_exporter["replacement"] == f"127.0.0.1:{EXPORTER_PORTS['blackbox']}"


def test_alerts_go_to_the_engine_and_exporter_series_to_metrics_ingest_with_the_token(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    compose = _compose_prometheus()
    auth = {"type": "Bearer", "credentials_file": str(tmp_path / "api-token")}
    (manager,) = config["alerting"]["alertmanagers"]
    assert manager["api_version"] == "v2"
    assert manager["authorization"] == auth
    assert manager["static_configs"] == [
        {"targets": [f"127.0.0.1:{SERVICE_PORTS['alert-engine']}"]}
    ]
    (write,) = config["remote_write"]
    (compose_write,) = compose["remote_write"]
    assert write["url"] == f"http://127.0.0.1:{SERVICE_PORTS['metrics-ingest']}/api/v1/write"
    assert write["authorization"] == auth
    assert write["write_relabel_configs"] == compose_write["write_relabel_configs"]
    assert write["queue_config"] == compose_write["queue_config"]
    assert config["global"] == compose["global"]
    # The rule files the compose Prometheus mounts at /etc/prometheus/rules.
    assert config["rule_files"] == [str(RULES_DIR / "*.yml")]
    assert sorted(RULES_DIR.glob("*.yml"))


def test_promtool_accepts_the_generated_config(tmp_path: Path) -> None:
    (tmp_path / "api-token").write_text("x" * 32 + "\n")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(_config(tmp_path), sort_keys=False))
    # Debian's promtool (make deps installs the prometheus package): the rule files too.
    result = subprocess.run(
        ["promtool", "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


def test_the_database_password_stays_off_the_command_line() -> None:
    argv, env = exporter_command(POSTGRES, 19187, ENDPOINTS)
    assert not any("secret" in arg for arg in argv)
    assert env == {
        "DATA_SOURCE_NAME": "postgresql://opsmesh:secret@127.0.0.1:5432/opsmesh?sslmode=disable"
    }
    assert postgres_exporter_dsn("postgresql://h/db?sslmode=require") == (
        "postgresql://h/db?sslmode=require"
    )
    assert postgres_exporter_dsn("postgresql://h/db?application_name=x") == (
        "postgresql://h/db?application_name=x&sslmode=disable"
    )


def test_every_exporter_listens_on_loopback_only() -> None:
    for exporter in EXPORTERS:
        argv, _ = exporter_command(exporter, 19999, ENDPOINTS)
        assert argv[0] == exporter.binary
        listen = [a for a in argv if "web.listen-address=" in a]
        assert listen == [f"{'-' if exporter is REDIS else '--'}web.listen-address=127.0.0.1:19999"]
    assert f"-redis.addr={ENDPOINTS.redis_url}" in exporter_command(REDIS, 1, ENDPOINTS)[0]
    assert f"--config.file={blackbox_config()}" in exporter_command(BLACKBOX, 1, ENDPOINTS)[0]
    assert exporter_command(NODE, 1, ENDPOINTS)[1] == {}


def test_compose_runs_the_same_binaries() -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    for exporter in EXPORTERS:
        spec = compose["services"][f"{exporter.job}-exporter"]
        command = spec["command"]
        assert command[0] == exporter.binary
        assert any(a.endswith(f"web.listen-address=:{exporter.default_port}") for a in command)
    blackbox = compose["services"]["blackbox-exporter"]
    mounted = {v.split(":")[1]: (COMPOSE / v.split(":")[0]).resolve() for v in blackbox["volumes"]}
    assert mounted["/etc/opsmesh/blackbox.yml"] == blackbox_config().resolve()


def test_blackbox_probes_with_the_module_the_config_defines() -> None:
    modules = yaml.safe_load(blackbox_config().read_text())["modules"]
    (job,) = [j for j in _compose_prometheus()["scrape_configs"] if j["job_name"] == "blackbox"]
    assert set(job["params"]["module"]) <= set(modules)


def test_prometheus_runs_as_compose_runs_it_on_loopback(tmp_path: Path) -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    flags = prometheus_command(tmp_path / "p.yml", tmp_path / "data", 19090)
    shared = {f for f in compose["services"]["prometheus"]["command"] if "path" not in f}
    shared -= {f for f in shared if f.startswith("--config.file")}
    assert shared <= set(flags)
    assert "--web.listen-address=127.0.0.1:19090" in flags
