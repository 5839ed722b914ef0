"""The compose stack, started once for tests/compose: the engine (ours if none runs), the
images (compose/images/build.sh), ``docker-compose up``, every healthcheck; at the end
``docker-compose down -v`` and the engine stopped if this run started it. Each step's
duration is printed at the end of the run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.compose.engine import DockerEngine
from tests.compose.stack import (
    COMPOSE_DIR,
    ROOT,
    Timings,
    compose,
    up_with_timeline,
)

TIMINGS = Timings()
LOG_DIR = ROOT / ".opsmesh" / "compose-test"


@dataclass
class Stack:
    engine: DockerEngine
    token: str


def _build_images() -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "build.log"
    with log.open("w") as out:
        result = subprocess.run(
            [str(COMPOSE_DIR / "images" / "build.sh")],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1500,
            check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"compose/images/build.sh failed:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with TIMINGS.step("engine: docker info, or start dockerd"):
        engine = DockerEngine.ensure()
    try:
        # A run that died before its `down` leaves its containers and volumes behind.
        compose("down", "-v", "--remove-orphans")
        with TIMINGS.step("images: base + docker-compose build"):
            _build_images()
        with TIMINGS.step("docker-compose up -d, every healthcheck healthy"):
            TIMINGS.startup = up_with_timeline()
        token = compose("exec", "-T", "alert-engine", "cat", "/run/opsmesh/api-token").strip()
        yield Stack(engine=engine, token=token)
    finally:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        (LOG_DIR / "compose.log").write_text(
            compose("logs", "--no-color", "--tail", "200", check=False)
        )
        with TIMINGS.step("docker-compose down -v"):
            compose("down", "-v", "--remove-orphans", check=False)
        if engine.started_here:
            with TIMINGS.step("engine: stop the dockerd started here"):
                engine.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS.steps:
        terminalreporter.section("compose stack: time per step")
        terminalreporter.write_line(TIMINGS.table())
