"""The stack's monitoring without containers: Prometheus and the four exporters from Debian's
packages, configured as the compose stack configures them (compose/prometheus/prometheus.yml,
compose/docker-compose.yml) but pointed at this machine's ports.

Pure: which exporters exist, the metric names the dashboards read from each, the command
line of each exporter and Prometheus's configuration. ``monitoring.py`` runs them.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opsmesh_dev.infra.stack import Endpoints

ROOT = Path(__file__).resolve().parents[4]
# Prometheus's own rules, the ones the compose Prometheus loads (this package runs from the
# checkout, as the console's runbooks do).
RULES_DIR = ROOT / "compose" / "prometheus" / "rules"
PROMETHEUS_BINARY = "prometheus"
PROMETHEUS_PORT = 9090
# The blackbox module every service's /health/ready is probed with (the file compose mounts).
BLACKBOX_MODULE = "http_ready"
# Only the exporters' families go to metrics-ingest (see compose/prometheus/prometheus.yml).
REMOTE_WRITE_KEEP = "(node|pg|redis|probe)_.+"
# A few writes at a time, as compose's: metrics-ingest answers each once Kafka took it.
REMOTE_WRITE_MAX_SHARDS = 4


def blackbox_config() -> Path:
    return Path(str(resources.files("opsmesh_dev.tools.resources") / "blackbox.yml"))


@dataclass(frozen=True, slots=True)
class Exporter:
    job: str  # the Prometheus job, as in the compose stack
    binary: str  # what Debian's package installs on the PATH
    default_port: int  # the package's default, where it listens in the compose stack
    # The names the dashboards read from this exporter: the compose test checks that the
    # compose Prometheus has each, and the integration test that the exporter exposes each.
    metrics: frozenset[str]


POSTGRES = Exporter(
    "postgres",
    "prometheus-postgres-exporter",
    9187,
    frozenset(
        {
            "pg_up",
            "pg_stat_database_numbackends",
            "pg_settings_max_connections",
            "pg_stat_database_xact_commit",
            "pg_stat_database_xact_rollback",
            "pg_stat_database_blks_hit",
            "pg_stat_database_blks_read",
            "pg_stat_database_deadlocks",
            "pg_database_size_bytes",
            "pg_locks_count",
            "pg_stat_activity_count",
            "pg_stat_activity_max_tx_duration",
        }
    ),
)
REDIS = Exporter(
    "redis",
    "prometheus-redis-exporter",
    9121,
    frozenset(
        {
            "redis_up",
            "redis_connected_clients",
            "redis_blocked_clients",
            "redis_memory_used_bytes",
            "redis_memory_max_bytes",
            "redis_commands_processed_total",
            "redis_keyspace_hits_total",
            "redis_keyspace_misses_total",
            "redis_db_keys",
            "redis_evicted_keys_total",
            "redis_expired_keys_total",
            "redis_rejected_connections_total",
        }
    ),
)
NODE = Exporter(
    "node",
    "prometheus-node-exporter",
    9100,
    frozenset(
        {
            "node_cpu_seconds_total",
            "node_load1",
            "node_load5",
            "node_load15",
            "node_memory_MemAvailable_bytes",
            "node_memory_MemTotal_bytes",
            "node_filesystem_avail_bytes",
            "node_filesystem_size_bytes",
            "node_disk_read_bytes_total",
            "node_disk_written_bytes_total",
            "node_network_receive_bytes_total",
            "node_network_transmit_bytes_total",
        }
    ),
)
BLACKBOX = Exporter(
    "blackbox",
    "prometheus-blackbox-exporter",
    9115,
    frozenset({"probe_success", "probe_duration_seconds"}),
)
EXPORTERS: tuple[Exporter, ...] = (POSTGRES, REDIS, NODE, BLACKBOX)


def missing_binaries() -> list[str]:
    """The Debian binaries not installed here (``make deps`` installs them)."""
    wanted = [PROMETHEUS_BINARY, *(e.binary for e in EXPORTERS)]
    return [name for name in wanted if shutil.which(name) is None]


def postgres_exporter_dsn(dsn: str) -> str:
    """The DSN for the exporter's Go driver (lib/pq), which requires TLS unless told not to:
    the project's servers speak plain TCP on loopback."""
    if "sslmode=" in (urlsplit(dsn).query or ""):
        return dsn
    return f"{dsn}{'&' if '?' in dsn else '?'}sslmode=disable"


def exporter_command(
    exporter: Exporter, port: int, endpoints: Endpoints
) -> tuple[list[str], dict[str, str]]:
    """The exporter's argv and the environment it adds: listening on loopback only, and
    the database's DSN (which may hold a password) in the environment, never on the command
    line, where any user's ``ps`` would see it."""
    listen = f"127.0.0.1:{port}"
    if exporter is POSTGRES:
        return (
            [exporter.binary, f"--web.listen-address={listen}"],
            {"DATA_SOURCE_NAME": postgres_exporter_dsn(endpoints.pg_dsn)},
        )
    if exporter is REDIS:
        # redis_exporter's flags take one dash.
        return (
            [
                exporter.binary,
                f"-redis.addr={endpoints.redis_url}",
                f"-web.listen-address={listen}",
            ],
            {},
        )
    if exporter is NODE:
        return [exporter.binary, f"--web.listen-address={listen}"], {}
    if exporter is BLACKBOX:
        return (
            [
                exporter.binary,
                f"--config.file={blackbox_config()}",
                f"--web.listen-address={listen}",
            ],
            {},
        )
    raise ValueError(f"unknown exporter {exporter.job}")


def _static(*targets: str) -> list[dict[str, list[str]]]:
    return [{"targets": list(targets)}]


def prometheus_config(
    *,
    services: Mapping[str, int],
    exporters: Mapping[str, int],
    prometheus_port: int,
    token_file: Path,
    rules_dir: Path = RULES_DIR,
) -> dict[str, Any]:
    """Prometheus's configuration for a mesh on this machine: ``services`` maps each service
    (the five and the console) to its port, ``exporters`` each exporter's job to its port.
    The same jobs, rules, alerting and remote write as the compose stack's."""
    engine = f"127.0.0.1:{services['alert-engine']}"
    ingest = f"127.0.0.1:{services['metrics-ingest']}"
    authorization = {"type": "Bearer", "credentials_file": str(token_file)}
    jobs: list[dict[str, Any]] = [
        {
            "job_name": name,
            "metrics_path": "/metrics",
            "static_configs": _static(f"127.0.0.1:{port}"),
        }
        for name, port in services.items()
    ]
    jobs += [
        {
            "job_name": "apps",
            "metrics_path": "/metrics/apps",
            "honor_labels": True,
            "static_configs": _static(ingest),
        },
        {"job_name": "prometheus", "static_configs": _static(f"127.0.0.1:{prometheus_port}")},
    ]
    jobs += [
        {"job_name": job, "static_configs": _static(f"127.0.0.1:{port}")}
        for job, port in exporters.items()
        if job != BLACKBOX.job
    ]
    if BLACKBOX.job in exporters:
        jobs.append(
            {
                "job_name": BLACKBOX.job,
                "metrics_path": "/probe",
                "params": {"module": [BLACKBOX_MODULE]},
                "static_configs": _static(
                    *(f"http://127.0.0.1:{port}/health/ready" for port in services.values())
                ),
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {
                        "target_label": "__address__",
                        "replacement": f"127.0.0.1:{exporters[BLACKBOX.job]}",
                    },
                ],
            }
        )
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(rules_dir / "*.yml")],
        "alerting": {
            "alertmanagers": [
                {
                    "api_version": "v2",
                    "authorization": authorization,
                    "static_configs": _static(engine),
                }
            ]
        },
        "remote_write": [
            {
                "url": f"http://{ingest}/api/v1/write",
                "authorization": authorization,
                "queue_config": {"max_shards": REMOTE_WRITE_MAX_SHARDS},
                "write_relabel_configs": [
                    {"source_labels": ["__name__"], "regex": REMOTE_WRITE_KEEP, "action": "keep"}
                ],
            }
        ],
        "scrape_configs": jobs,
    }


def prometheus_command(config: Path, data_dir: Path, port: int) -> list[str]:
    """As the compose Prometheus runs (its command in docker-compose.yml), on loopback."""
    return [
        PROMETHEUS_BINARY,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        "--storage.tsdb.retention.time=2d",
        "--rules.alert.resend-delay=10s",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
