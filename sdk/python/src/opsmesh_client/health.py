"""Health checks of the application: a registry, built-in checks, probe answers.

Checks run on a thread of their own every ``heartbeat_interval_s`` (a check that hangs on
a dead dependency delays only the next check round, never a request or the sending
thread); each result is reported to health-aggregator and kept for the Kubernetes-style
probes the framework integrations answer: ``/health/live`` (the process answers),
``/health/ready`` (every critical check passed its last run) and ``/health/startup`` (the
first round has run).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LIVE, READY, STARTUP = "/health/live", "/health/ready", "/health/startup"
PROBES = (LIVE, READY, STARTUP)


@dataclass(frozen=True, slots=True)
class Result:
    status: str  # pass, warn or fail
    output: str | None = None
    observed_value: float | str | None = None


Check = Callable[[], Result]
Report = Callable[[str, Result, bool], None]


@dataclass(frozen=True, slots=True)
class _Registered:
    check: Check
    critical: bool


class HealthChecks:
    def __init__(self, report: Report) -> None:
        self._report = report
        self._checks: dict[str, _Registered] = {}
        self._results: dict[str, Result] = {}
        self._lock = threading.Lock()
        self._rounds = 0

    def add(self, name: str, check: Check, *, critical: bool = True) -> None:
        with self._lock:
            self._checks[name] = _Registered(check, critical)

    def run(self) -> dict[str, Result]:
        """One round: every check, a raising one counted as failed with its error's class."""
        with self._lock:
            checks = dict(self._checks)
        results = {}
        for name, registered in checks.items():
            try:
                result = registered.check()
            except Exception as exc:  # a check's failure is its result, not the thread's
                result = Result("fail", f"{type(exc).__name__}: {exc}"[:1000])
            results[name] = result
            self._report(name, result, registered.critical)
        with self._lock:
            self._results = results
            self._rounds += 1
        return results

    def probe(self, path: str) -> tuple[int, bytes]:
        """The answer to a probe path: status and a JSON body."""
        with self._lock:
            results, rounds = dict(self._results), self._rounds
            critical = {n for n, r in self._checks.items() if r.critical}
        if path == LIVE:
            return 200, b'{"status":"pass"}'
        failing = sorted(n for n in critical if results.get(n, Result("fail")).status == "fail")
        ok = rounds > 0 and (path == STARTUP or not failing)
        body = {
            "status": "pass" if ok else "fail",
            "checks": {n: {"status": r.status, "output": r.output} for n, r in results.items()},
            "failing": failing,
        }
        return (200 if ok else 503), json.dumps(body).encode()


# -- built-in checks (standard library only; drivers are the application's) ---------------


def callable_check(ping: Callable[[], object]) -> Check:
    """Passes when ``ping`` returns: ``lambda: conn.execute("SELECT 1")`` for a database,
    ``redis_client.ping`` for Redis, ``lambda: s3.head_bucket(Bucket=...)`` for S3."""

    def check() -> Result:
        ping()
        return Result("pass")

    return check


def disk_space(path: str | Path, *, warn_below: float = 0.10, fail_below: float = 0.05) -> Check:
    def check() -> Result:
        usage = shutil.disk_usage(path)
        free = usage.free / usage.total
        status = "fail" if free < fail_below else "warn" if free < warn_below else "pass"
        return Result(status, f"{free:.1%} free on {path}", round(free, 4))

    return check


def writable_path(path: str | Path) -> Check:
    def check() -> Result:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".opsmesh-health-") as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
        return Result("pass")

    return check


def http_dependency(url: str, *, timeout_s: float = 2.0) -> Check:
    def check() -> Result:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310
                return Result("pass", f"HTTP {answer.status}", float(answer.status))
        except urllib.error.HTTPError as exc:
            exc.close()
            return Result("fail", f"HTTP {exc.code}", float(exc.code))

    return check


def memory(*, warn_above_bytes: int, fail_above_bytes: int) -> Check:
    """The process's peak resident set size (``ru_maxrss``, KiB on Linux)."""

    def check() -> Result:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        status = "fail" if rss > fail_above_bytes else "warn" if rss > warn_above_bytes else "pass"
        return Result(status, f"peak RSS {rss} bytes", float(rss))

    return check
