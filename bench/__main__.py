"""``make bench``: every benchmark, one after the other, each in its own process with its
own freshly started infrastructure (so one cannot skew the next). Pass names to run a
subset: ``python -m bench kafka_kit notifier``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

BENCHMARKS = (
    "kafka_kit",
    "metrics_ingest",
    "remote_write",
    "health_aggregator",
    "query_analyzer",
    "notifier",
    "alert_engine_signals",
    "alert_engine_vs_alertmanager",
    "api_fuzz",
    "alert_engine_inputs",
    "pool_reconnect",
    "retention",
    "tracing",
    "amtemplates",
    "console",
    "sdk_overhead",
    "cache",
)


def main() -> int:
    wanted = sys.argv[1:] or [b for b in BENCHMARKS if importlib.util.find_spec(f"bench.{b}")]
    failed = []
    for name in wanted:
        print(f"\n=== bench.{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
