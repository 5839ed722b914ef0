"""A throwaway PostgreSQL 15 cluster (Debian's packages, with hypopg) on a free port.

PostgreSQL refuses to run as root; as root the cluster runs as Debian's ``postgres``
user with its data directory owned by that user. The first start in a work directory
creates the cluster and its database; a ``stop()`` then ``start()`` (or ``restart()``)
keeps the data directory and the port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from opsmesh_dev.infra.process import (
    InfrastructureUnavailable,
    free_port,
    running_as_root,
    spawn,
    terminate,
    wait_until,
)

_REMEDY = (
    "install it with `make deps` (apt-get install postgresql-15 postgresql-15-hypopg), "
    "or set OPSMESH_PG_DSN=postgresql://user:pass@host:port/db to use an existing server"
)
DATABASE = "opsmesh"


def pg_bindir() -> Path:
    configured = os.environ.get("OPSMESH_PG_BINDIR")
    candidates = [Path(configured)] if configured else [Path("/usr/lib/postgresql/15/bin")]
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise InfrastructureUnavailable(
        "PostgreSQL",
        "PostgreSQL 15 server binaries not found in /usr/lib/postgresql/15/bin",
        _REMEDY,
    )


def hypopg_installed(bindir: Path) -> bool:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        sharedir = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
    else:
        sharedir = "/usr/share/postgresql/15"
    return (Path(sharedir) / "extension" / "hypopg.control").exists()


@dataclass
class PostgresServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None
    _user: str | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (benchmarks pin it to a core)."""
        return self._process.pid if self.running and self._process is not None else None

    def start(self, timeout_s: float = 60.0) -> str:
        """Start the server; the first start in this work directory runs initdb and
        creates the database."""
        bindir = pg_bindir()
        if not hypopg_installed(bindir):
            raise InfrastructureUnavailable(
                "PostgreSQL",
                "the hypopg extension (postgresql-15-hypopg) is not installed",
                _REMEDY,
            )
        self._user = "postgres" if running_as_root() else None
        if self._user and shutil.which("runuser") is None:
            raise InfrastructureUnavailable("PostgreSQL", "runuser not found", _REMEDY)
        data = self.data_dir
        fresh = not (data / "PG_VERSION").exists()
        sockets = self.workdir / "run"
        for path in (self.workdir, data, sockets):
            path.mkdir(parents=True, exist_ok=True)
            if self._user:
                shutil.chown(path, self._user, self._user)
        log_file = self.workdir / "postgres.log"
        log_file.touch()
        if self._user:
            shutil.chown(log_file, self._user, self._user)
        if fresh:
            self._initdb(bindir, data)
        self._process = spawn(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={sockets}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
                "-c",
                "shared_preload_libraries=pg_stat_statements",
            ],
            log_file=log_file,
            user=self._user,
        )
        wait_until(
            self._accepts,
            timeout_s=timeout_s,
            what="PostgreSQL",
            process=self._process,
            log_file=log_file,
        )
        if fresh:
            self._run(
                [
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    DATABASE,
                ],
                "createdb",
            )
        return self.dsn

    def _initdb(self, bindir: Path, data: Path) -> None:
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )

    def _accepts(self) -> bool:
        bindir = pg_bindir()
        result = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _run(self, args: list[str], what: str) -> None:
        command = ["runuser", "-u", self._user, "--", *args] if self._user else args
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if result.returncode != 0:
            raise InfrastructureUnavailable(
                "PostgreSQL",
                f"{what} failed: {(result.stdout + result.stderr)[-1500:]}",
                "fix the cause above (the data directory's parents must be readable by the "
                "server's user), or set OPSMESH_PG_DSN to use an existing server",
            )

    def stop(self) -> None:
        """A fast shutdown; the data directory stays for the next ``start()``."""
        if self._process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions and exit cleanly.
            terminate(self._process, grace_s=20, sig=signal.SIGINT)
            self._process = None

    def restart(self, timeout_s: float = 60.0) -> str:
        """Stop and start again on the same port with the same data directory."""
        self.stop()
        return self.start(timeout_s)
