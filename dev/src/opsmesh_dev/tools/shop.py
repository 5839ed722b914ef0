"""The demo shop (``examples/shop``, a Django application instrumented with the producer
SDK) and its load generator, as ``opsmesh up`` runs them: the demo's request metrics,
query events, health reports and profiles come from a real application."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from opsmesh_dev.infra.process import port_open, spawn, terminate, wait_until

SHOP_PORT = 8090
# The shop is an example in this repository, not a package: run from its root.
REPOSITORY = Path(__file__).resolve().parents[4]


def shop_env(dsn: str, kafka_bootstrap: str) -> dict[str, str]:
    return {
        "SHOP_DSN": dsn,
        "OPSMESH_SERVICE": "shop",
        "OPSMESH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        # The demo alert rule reads http_error_ratio{env="demo"}.
        "OPSMESH_ENVIRONMENT": "demo",
        # The checkout (~100 ms of CPU) and the N+1 page are profiled every time, other
        # requests now and then.
        "OPSMESH_PROFILE_SLOW_MS": "50",
        "OPSMESH_PROFILE_SAMPLE_RATE": "0.05",
    }


def start_shop(dsn: str, kafka_bootstrap: str, run_dir: Path) -> subprocess.Popen[bytes]:
    """Migrate (create and fill its tables) and serve on SHOP_PORT; returns once it listens."""
    if not (REPOSITORY / "examples" / "shop").is_dir():
        raise RuntimeError(f"the demo shop is not in this checkout ({REPOSITORY}/examples/shop)")
    process = spawn(
        [sys.executable, "-m", "examples.shop", "serve", "--port", str(SHOP_PORT)],
        log_file=run_dir / "shop.log",
        env=shop_env(dsn, kafka_bootstrap),
        cwd=REPOSITORY,
    )
    try:
        wait_until(
            lambda: port_open(SHOP_PORT), timeout_s=120, what="the demo shop", process=process
        )
    except BaseException:
        terminate(process)
        raise
    return process


def start_load(run_dir: Path) -> subprocess.Popen[bytes]:
    return spawn(
        [sys.executable, "-m", "examples.shop", "load", "--url", f"http://127.0.0.1:{SHOP_PORT}"],
        log_file=run_dir / "load.log",
        cwd=REPOSITORY,
    )
