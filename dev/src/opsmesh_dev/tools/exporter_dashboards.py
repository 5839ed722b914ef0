"""The database, cache and host dashboards, and the readiness probes on the overview: from
the exporters' jobs (``exporters.EXPORTERS``; the same job names in compose and under
``opsmesh up``). Every metric named here is declared in its exporter's ``metrics``, which
the tests prove the running exporters expose."""

from __future__ import annotations

from opsmesh_dev.tools.exporters import BLACKBOX, NODE, POSTGRES, REDIS
from opsmesh_dev.tools.panels import Panel, p


def _sel(job: str, extra: str = "") -> str:
    return f'{{job="{job}"{", " + extra if extra else ""}}}'


def probes() -> list[Panel]:
    sel = _sel(BLACKBOX.job)
    return [
        p(
            "Services ready (blackbox probe of /health/ready), by service",
            f"min by (instance) (probe_success{sel})",
            "{{instance}}",
            description="1 while GET /health/ready answers 200; 0 names the service to look at.",
        ),
        p(
            "Readiness probe time, by service",
            f"max by (instance) (probe_duration_seconds{sel})",
            "{{instance}}",
            "s",
        ),
    ]


def database() -> list[Panel]:
    sel = _sel(POSTGRES.job)

    def per_db(metric: str, window: str = "5m") -> str:
        return f"sum by (datname) (rate({metric}{sel}[{window}]))"

    return [
        p("PostgreSQL reachable by the exporter", f"max(pg_up{sel})", "up"),
        Panel(
            "Connections, by database, against max_connections",
            (
                (f"sum by (datname) (pg_stat_database_numbackends{sel})", "{{datname}}"),
                (f"max(pg_settings_max_connections{sel})", "max_connections"),
            ),
        ),
        Panel(
            "Transactions per second, by database",
            (
                (per_db("pg_stat_database_xact_commit", "1m"), "{{datname}} commit"),
                (per_db("pg_stat_database_xact_rollback", "1m"), "{{datname}} rollback"),
            ),
            "ops",
        ),
        p(
            "Buffer cache hit ratio, by database",
            f"{per_db('pg_stat_database_blks_hit')} / ({per_db('pg_stat_database_blks_hit')}"
            f" + {per_db('pg_stat_database_blks_read')} > 0)",
            "{{datname}}",
            "percentunit",
            "Blocks found in shared buffers over all blocks read; low means disk reads.",
        ),
        p(
            "Connections, by state",
            f"sum by (state) (pg_stat_activity_count{sel})",
            "{{state}}",
        ),
        p(
            "Longest open transaction, by state",
            f"max by (state) (pg_stat_activity_max_tx_duration{sel})",
            "{{state}}",
            "s",
            "Long 'idle in transaction' holds locks and blocks vacuum.",
        ),
        p("Locks held, by mode", f"sum by (mode) (pg_locks_count{sel})", "{{mode}}"),
        p(
            "Deadlocks per second, by database",
            per_db("pg_stat_database_deadlocks"),
            "{{datname}}",
            "ops",
        ),
        p(
            "Database size",
            f"max by (datname) (pg_database_size_bytes{sel})",
            "{{datname}}",
            "bytes",
        ),
    ]


def cache() -> list[Panel]:
    sel = _sel(REDIS.job)

    def rate(metric: str, window: str = "5m") -> str:
        return f"sum(rate({metric}{sel}[{window}]))"

    return [
        p("Redis reachable by the exporter", f"max(redis_up{sel})", "up"),
        p(
            "Commands per second",
            rate("redis_commands_processed_total", "1m"),
            "commands",
            "ops",
        ),
        Panel(
            "Clients: connected and blocked",
            (
                (f"sum(redis_connected_clients{sel})", "connected"),
                (f"sum(redis_blocked_clients{sel})", "blocked"),
            ),
        ),
        Panel(
            "Memory used, against maxmemory",
            (
                (f"sum(redis_memory_used_bytes{sel})", "used"),
                (f"max(redis_memory_max_bytes{sel})", "maxmemory (0: no limit)"),
            ),
            "bytes",
        ),
        p(
            "Keyspace hit ratio",
            f"{rate('redis_keyspace_hits_total')} / ({rate('redis_keyspace_hits_total')}"
            f" + {rate('redis_keyspace_misses_total')} > 0)",
            "hits",
            "percentunit",
        ),
        p("Keys, by database", f"sum by (db) (redis_db_keys{sel})", "{{db}}"),
        Panel(
            "Keys evicted and expired per second",
            (
                (rate("redis_evicted_keys_total"), "evicted"),
                (rate("redis_expired_keys_total"), "expired"),
            ),
            "ops",
            "Evictions mean maxmemory is reached: rate-limit buckets and delivery claims lost.",
        ),
        p(
            "Connections rejected per second",
            rate("redis_rejected_connections_total"),
            "rejected",
            "ops",
        ),
    ]


def host() -> list[Panel]:
    sel = _sel(NODE.job)
    idle = _sel(NODE.job, 'mode="idle"')
    disks = _sel(NODE.job, 'fstype!~"tmpfs|overlay|squashfs"')

    def per_device(metric: str) -> str:
        return f"sum by (device) (rate({metric}{sel}[1m]))"

    return [
        p(
            "CPU busy",
            f"1 - avg by (instance) (rate(node_cpu_seconds_total{idle}[1m]))",
            "{{instance}}",
            "percentunit",
        ),
        Panel(
            "Load average",
            (
                (f"max(node_load1{sel})", "1 min"),
                (f"max(node_load5{sel})", "5 min"),
                (f"max(node_load15{sel})", "15 min"),
            ),
        ),
        p(
            "Memory available",
            f"max(node_memory_MemAvailable_bytes{sel}) / max(node_memory_MemTotal_bytes{sel})",
            "available",
            "percentunit",
        ),
        p(
            "File system space available, by mount point",
            f"max by (mountpoint) (node_filesystem_avail_bytes{disks})"
            f" / max by (mountpoint) (node_filesystem_size_bytes{disks})",
            "{{mountpoint}}",
            "percentunit",
            "Kafka's log, PostgreSQL's data and Prometheus's TSDB all grow on disk.",
        ),
        Panel(
            "Disk I/O, by device",
            (
                (per_device("node_disk_read_bytes_total"), "{{device}} read"),
                (per_device("node_disk_written_bytes_total"), "{{device}} written"),
            ),
            "Bps",
        ),
        Panel(
            "Network, by device",
            (
                (per_device("node_network_receive_bytes_total"), "{{device}} received"),
                (per_device("node_network_transmit_bytes_total"), "{{device}} sent"),
            ),
            "Bps",
        ),
    ]


# File stem, title, panels.
BOARDS = (
    ("database", "opsmesh: database (PostgreSQL)", database),
    ("cache", "opsmesh: cache (Redis)", cache),
    ("host", "opsmesh: host", host),
)
