"""The three parts together, each replaced by an existing endpoint when its variable is set."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from opsmesh.settings import ENV_KAFKA, ENV_PG, ENV_REDIS
from opsmesh_dev.infra.kafka import KafkaServer
from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.infra.redis import RedisServer

_Part = TypeVar("_Part", KafkaServer, PostgresServer, RedisServer)


@dataclass(frozen=True, slots=True)
class Endpoints:
    kafka_bootstrap: str
    pg_dsn: str
    redis_url: str

    def as_env(self) -> dict[str, str]:
        return {ENV_KAFKA: self.kafka_bootstrap, ENV_PG: self.pg_dsn, ENV_REDIS: self.redis_url}


class LocalStack:
    """Start what is not given by the environment; stop what was started, in reverse."""

    def __init__(self, workdir: Path | None = None, *, keep_workdir: bool = False) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="opsmesh-infra-"))
        # PostgreSQL runs as its own user when we are root and must reach its data directory.
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        self._keep = keep_workdir
        self._started: list[KafkaServer | PostgresServer | RedisServer] = []
        self.endpoints: Endpoints | None = None

    def start(self) -> Endpoints:
        try:
            kafka = (
                os.environ.get(ENV_KAFKA)
                or self._start(KafkaServer(self.workdir / "kafka")).bootstrap
            )
            pg = (
                os.environ.get(ENV_PG) or self._start(PostgresServer(self.workdir / "postgres")).dsn
            )
            redis = (
                os.environ.get(ENV_REDIS) or self._start(RedisServer(self.workdir / "redis")).url
            )
        except BaseException:
            self.stop()
            raise
        self.endpoints = Endpoints(kafka, pg, redis)
        return self.endpoints

    def _start(self, part: _Part) -> _Part:
        part.start()
        self._started.append(part)
        return part

    def started_pids(self) -> list[int]:
        """The process ids of the servers this stack started (not those given by the
        environment)."""
        return [pid for part in self._started if (pid := part.pid) is not None]

    def stop(self) -> None:
        while self._started:
            self._started.pop().stop()
        if self._own_workdir and not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
