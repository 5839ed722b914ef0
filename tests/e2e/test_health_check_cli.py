"""``opsmesh health-check`` against the running mesh: the five services, the broker, the
database and Redis all pass, the services' own consumer groups are listed, and a service
stopped makes the command fail naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opsmesh.topics import GROUP_ALERT_ENGINE, GROUP_NOTIFIER
from opsmesh_dev.tools.mesh import SERVICES, Mesh

pytestmark = pytest.mark.e2e


def health_check(mesh: Mesh, *extra: str) -> tuple[int, dict[str, Any]]:
    services = [f"--service={s.name}={mesh.running[s.name].url}" for s in SERVICES]
    # The session's other tests leave lag and dead letters behind on purpose; the bounds
    # here are the command's, not this mesh's usual levels.
    answer = subprocess.run(
        [
            str(Path(sys.executable).with_name("opsmesh")),
            "health-check",
            *services,
            *extra,
            "--max-lag=1000000000",
            "--max-dead-letters=1000000000",
            "--json",
        ],
        env={**mesh.endpoints.as_env(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return answer.returncode, json.loads(answer.stdout)


def test_the_running_mesh_passes_its_health_check(mesh: Mesh) -> None:
    code, report = health_check(mesh)
    failed = [c for c in report["checks"] if c["status"] != "ok"]
    assert code == 0, failed
    kinds = {c["check"] for c in report["checks"]}
    assert kinds == {"service", "broker", "database", "redis", "consumer-lag", "dlq"}
    groups = {c["target"] for c in report["checks"] if c["check"] == "consumer-lag"}
    assert {GROUP_ALERT_ENGINE, GROUP_NOTIFIER} <= groups


def test_a_service_that_does_not_answer_fails_the_check(mesh: Mesh) -> None:
    code, report = health_check(mesh, "--service=console=http://127.0.0.1:1", "--timeout=3")
    assert code == 1
    (failed,) = [c for c in report["checks"] if c["status"] != "ok"]
    assert failed["check"] == "service"
    assert failed["target"] == "console"
