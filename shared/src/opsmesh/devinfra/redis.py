"""redis-server from Debian's packages on a free loopback port, no persistence."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from opsmesh.devinfra.process import (
    InfrastructureUnavailable,
    free_port,
    port_open,
    spawn,
    terminate,
    wait_until,
)

_REMEDY = (
    "install it with `make deps` (apt-get install redis-server), "
    "or set OPSMESH_REDIS_URL=redis://host:port/0 to use an existing server"
)


@dataclass
class RedisServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise InfrastructureUnavailable("Redis", "redis-server is not installed", _REMEDY)
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_file = self.workdir / "redis.log"
        self._process = spawn(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
            ],
            log_file=log_file,
        )
        wait_until(
            lambda: port_open(self.port),
            timeout_s=timeout_s,
            what="Redis",
            process=self._process,
            log_file=log_file,
        )
        return self.url

    def stop(self) -> None:
        if self._process is not None:
            terminate(self._process, grace_s=10)
            self._process = None
