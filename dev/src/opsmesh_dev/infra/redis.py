"""redis-server from Debian's packages on a free loopback port.

Persistence is an append-only file fsynced every second in the work directory, as a
production Redis holding rate-limit buckets and delivery claims would run: a ``stop()``
then ``start()`` (or ``restart()``) keeps the port and the data, so buckets and claims
survive a restart. (Neither strictly needs to: a lost bucket starts full again, and a lost
claim matters only if a rebalance moves a request between notifier replicas mid-send,
when both may send it once; the idempotency key lets receivers drop the second.)
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from opsmesh_dev.infra.process import (
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

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (benchmarks pin it to a core)."""
        return self._process.pid if self.running and self._process is not None else None

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
                "yes",
                "--appendfsync",
                "everysec",
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
        """SIGTERM: Redis fsyncs its append-only file and exits; the data stays."""
        if self._process is not None:
            terminate(self._process, grace_s=10)
            self._process = None

    def restart(self, timeout_s: float = 20.0) -> str:
        """Stop and start again on the same port, reloading the append-only file."""
        self.stop()
        return self.start(timeout_s)
