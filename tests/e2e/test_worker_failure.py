"""A service whose worker fails exits non-zero, so a restart-on-failure supervisor
restarts it: a consumer that cannot progress first turns readiness red, then gives up."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from opsmesh.web.app import ExitStatus
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.process import free_port, spawn, terminate, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _start(
    infra: Endpoints, tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = tmp_path / "stalling.log"
    process = spawn(
        [sys.executable, "-m", "tests.e2e.stalling_service"],
        log_file=log,
        env={**infra.as_env(), "STALLING_HTTP_PORT": str(port), **env},
        cwd=ROOT,
    )
    return process, port, log


def _readiness(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except OSError:
        return {}


def test_a_consumer_that_cannot_progress_turns_red_then_the_process_exits_non_zero(
    infra: Endpoints, tmp_path: Path, unique: str
) -> None:
    process, port, log = _start(
        infra,
        tmp_path,
        {
            "STALLING_GROUP": f"tests.stalling.{unique}",
            "OPSMESH_CONSUMER_STALL_AFTER_S": "1",
            "OPSMESH_CONSUMER_GIVE_UP_AFTER_S": "8",
        },
    )
    try:
        answer = wait_until(
            lambda: (
                r
                if "stalled"
                in (r := _readiness(port))
                .get("checks", {})
                .get(f"consumer:tests.stalling.{unique}", "")
                else None
            ),
            timeout_s=60,
            what="readiness naming the stall",
            process=process,
            log_file=log,
        )
        assert answer["status"] == "not_ready"
        assert "ConnectionRefusedError" in answer["checks"][f"consumer:tests.stalling.{unique}"]
        code = process.wait(timeout=60)
    finally:
        terminate(process, grace_s=5)
    assert code == ExitStatus.WORKER_FAILED, log.read_text()[-2000:]
    assert "ConsumerStalled" in log.read_text()


def test_a_worker_that_raises_makes_the_process_exit_non_zero(
    infra: Endpoints, tmp_path: Path
) -> None:
    process, _, log = _start(infra, tmp_path, {"STALLING_MODE": "raise"})
    try:
        code = process.wait(timeout=60)
    finally:
        terminate(process, grace_s=5)
    assert code == ExitStatus.WORKER_FAILED, log.read_text()[-2000:]
    assert "a worker bug" in log.read_text()
