"""The Docker engine and docker-compose, driven as a user would from a shell.

``DockerEngine.ensure()`` uses the engine that answers ``docker info``; when none does, it
starts Debian's ``dockerd`` itself (at a lower CPU priority, so image builds share the
machine) with the ``daemon.json`` below, and ``stop()`` ends only that daemon. Its data
root stays the system's (``/var/lib/docker``), so image layers cached by one run serve the
next."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Containers get these limits unless a service sets its own. Where the engine itself runs
# with lowered limits (as in a sandbox), the engine's defaults, which are higher, fail at
# container start ("setrlimit RLIMIT_NOFILE: Operation not permitted").
DAEMON_CONFIG: dict[str, Any] = {
    "default-ulimits": {
        "nofile": {"Name": "nofile", "Soft": 1024, "Hard": 1024},
        "nproc": {"Name": "nproc", "Soft": 4096, "Hard": 4096},
    },
}


class EngineUnavailable(RuntimeError):
    """No engine answers and none could be started here."""


def _answers() -> bool:
    return (
        subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode
        == 0
    )


@dataclass
class DockerEngine:
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    log_file: Path | None = None
    started_here: bool = field(default=False)

    @classmethod
    def ensure(cls, timeout_s: float = 60.0) -> DockerEngine:
        if shutil.which("docker") is None or shutil.which("docker-compose") is None:
            raise EngineUnavailable("docker and docker-compose are not installed: run make deps")
        if _answers():
            return cls()
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not Path(dockerd).exists():
            raise EngineUnavailable("no Docker engine runs and dockerd is missing (make deps)")
        workdir = Path(tempfile.mkdtemp(prefix="opsmesh-dockerd-"))
        config = workdir / "daemon.json"
        config.write_text(json.dumps(DAEMON_CONFIG, indent=2))
        log_file = workdir / "dockerd.log"
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                ["nice", "-n", "10", dockerd, "--config-file", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        engine = cls(process=process, workdir=workdir, log_file=log_file, started_here=True)
        deadline = time.monotonic() + timeout_s
        while not _answers():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_file.read_text(errors="replace")[-3000:]
                engine.stop()
                raise EngineUnavailable(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)
        return engine

    def stop(self) -> None:
        """Ends the daemon this object started (and the containerd it started)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
