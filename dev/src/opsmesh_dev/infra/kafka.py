"""Apache Kafka 4.x, KRaft mode, single node, from jars resolved by Maven.

The jars come from Maven Central through ``resources/kafka-pom.xml`` into a cache
(``$OPSMESH_CACHE_DIR``, default ``~/.cache/opsmesh``). Storage is formatted, with a new
cluster id, only on the first start in a work directory: a ``stop()`` then ``start()``
(or ``restart()``) keeps the log directory, the cluster id and both ports, so topics,
records and committed offsets survive, as they do when a real broker restarts.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from opsmesh_dev.infra.process import (
    InfrastructureUnavailable,
    free_port,
    port_open,
    spawn,
    terminate,
    wait_until,
)

_REMEDY = "or set OPSMESH_KAFKA_BOOTSTRAP=host:port to use an existing Kafka broker"


def cache_dir() -> Path:
    return Path(os.environ.get("OPSMESH_CACHE_DIR", Path.home() / ".cache" / "opsmesh"))


def _pom() -> tuple[str, str]:
    text = (resources.files("opsmesh_dev.infra.resources") / "kafka-pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", text)
    if not match:
        raise RuntimeError("kafka-pom.xml has no <kafka.version>")
    return text, match.group(1)


def ensure_jars() -> Path:
    """The broker's classpath directory, resolving it with Maven the first time."""
    pom_text, version = _pom()
    target = cache_dir() / f"kafka-{version}" / "libs"
    if (target / ".complete").exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfrastructureUnavailable(
            "Kafka",
            "Maven (mvn) is not installed, so the broker jars cannot be resolved",
            f"install Maven (apt-get install maven) {_REMEDY}",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(pom_text)
        staging = Path(work) / "libs"
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            raise InfrastructureUnavailable(
                "Kafka",
                f"Maven could not resolve org.apache.kafka:kafka_2.13:{version} from Maven "
                f"Central:\n{(result.stdout + result.stderr)[-1500:]}",
                f"check that Maven Central is reachable, {_REMEDY}",
            )
        (staging / ".complete").write_text(version)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise InfrastructureUnavailable(
            "Kafka", "no Java runtime found", f"install Java 17+ {_REMEDY}"
        )
    return java


def new_cluster_id() -> str:
    """A KRaft cluster id (a base64url UUID). Never one that starts with "-": the storage
    tool's argument parser reads that as an option and fails (1 start in 64 did)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class KafkaServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    heap: str = "512m"
    _process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "logs" / "server.log"

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

    def cluster_id(self) -> str | None:
        """The cluster id the storage was formatted with (None before the first start)."""
        meta = self.data_dir / "meta.properties"
        if not meta.exists():
            return None
        for line in meta.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    def start(self, timeout_s: float = 90.0) -> str:
        """Start the broker; the first start in this work directory formats its storage."""
        libs = ensure_jars()
        java = _java()
        data = self.data_dir
        logs = self.workdir / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "server.properties"
        config.write_text(self._properties(data))
        log4j = self.workdir / "log4j2.xml"
        log4j.write_text(
            (resources.files("opsmesh_dev.infra.resources") / "kafka-log4j2.xml").read_text()
        )
        classpath = f"{libs}/*"
        jvm = [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1"
            if os.environ.get("OPSMESH_KAFKA_FAST_JIT")
            else "-Xshare:auto",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={logs}",
            "-Djava.awt.headless=true",
            "-cp",
            classpath,
        ]
        if self.cluster_id() is None:
            self._format(jvm, config)
        self._process = spawn([*jvm, "kafka.Kafka", str(config)], log_file=logs / "stdout.log")
        wait_until(
            lambda: port_open(self.port),
            timeout_s=timeout_s,
            what="Kafka broker",
            process=self._process,
            log_file=logs / "stdout.log",
        )
        return self.bootstrap

    def _format(self, jvm: list[str], config: Path) -> None:
        cluster_id = new_cluster_id()
        fmt = subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if fmt.returncode != 0:
            raise InfrastructureUnavailable(
                "Kafka",
                f"kafka-storage format failed: {(fmt.stdout + fmt.stderr)[-1500:]}",
                _REMEDY,
            )

    def stop(self) -> None:
        """A controlled shutdown (SIGTERM); the data stays for the next ``start()``."""
        if self._process is not None:
            terminate(self._process, grace_s=20)
            self._process = None

    def restart(self, timeout_s: float = 90.0) -> str:
        """Stop and start again on the same ports with the same data and cluster id."""
        self.stop()
        return self.start(timeout_s)

    def _properties(self, data: Path) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=1",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=8",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "",
            ]
        )
