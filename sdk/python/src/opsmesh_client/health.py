"""Health checks of the application: a registry, built-in checks, probe answers.

Checks run on a thread of their own every ``heartbeat_interval_s`` (a check that hangs on
a dead dependency delays only the next check round, never a request or the sending
thread); each result is reported to health-aggregator and kept for the Kubernetes-style
probes the framework integrations answer: ``/health/live`` (the process answers),
``/health/ready`` (every critical check passed its last run) and ``/health/startup`` (the
first round has run).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsmesh_client.probe import Bounded, Check, CheckFailed, Result, redact

__all__ = [
    "Check",
    "CheckFailed",
    "HealthChecks",
    "Result",
    "asyncpg_pool",
    "callable_check",
    "database",
    "disk_space",
    "django_database",
    "http_dependency",
    "memory",
    "redact",
    "redis_ping",
    "s3_bucket",
    "sqlalchemy_engine",
    "writable_path",
]

LIVE, READY, STARTUP = "/health/live", "/health/ready", "/health/startup"
PROBES = (LIVE, READY, STARTUP)


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


# -- dependencies: the database, the cache (Redis), S3 ---------------------------------
# Each runs its probe on a thread of its own and waits at most ``timeout_s`` for it, so a
# dependency that never answers fails its check in time whatever its driver's timeouts;
# each passes with the probe's latency (``observed_value``, ms), warns above
# ``warn_above_ms``, fails with a reason stripped of credentials, and never raises. The
# drivers are the application's (imported only by the check that uses one).


def _select_one(connection: Any) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    finally:
        cursor.close()


def database(
    connect: Callable[[], Any],
    *,
    timeout_s: float = 2.0,
    warn_above_ms: float | None = 500.0,
    close: bool = True,
    secrets: Sequence[str] = (),
) -> Check:
    """``SELECT 1`` through the application's driver. ``connect()`` returns a DB-API
    connection (closed after the probe unless ``close=False``), e.g.
    ``lambda: psycopg.connect(dsn, connect_timeout=2)``, or a context manager that lends
    one, as a pool's ``connection()`` does (``database(pool.connection)`` for psycopg_pool).
    ``secrets`` (a password) are kept out of the reason."""

    def probe() -> None:
        made = connect()
        if not hasattr(made, "cursor"):
            with made as connection:
                _select_one(connection)
            return
        try:
            _select_one(made)
        finally:
            if close:
                made.close()

    return Bounded(
        "database", probe, timeout_s=timeout_s, warn_above_ms=warn_above_ms, secrets=secrets
    )


def django_database(
    alias: str = "default", *, timeout_s: float = 2.0, warn_above_ms: float | None = 500.0
) -> Check:
    """``SELECT 1`` on a Django database alias, on a connection the probe's thread opens and
    closes (Django's connections are per thread)."""

    def probe() -> None:
        from django.db import connections  # noqa: PLC0415 - the application's, if Django

        connection = connections[alias]
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        finally:
            connection.close()

    return Bounded(f"database {alias}", probe, timeout_s=timeout_s, warn_above_ms=warn_above_ms)


def sqlalchemy_engine(
    engine: Any, *, timeout_s: float = 2.0, warn_above_ms: float | None = 500.0
) -> Check:
    """``SELECT 1`` on a connection from a SQLAlchemy engine's pool."""

    def probe() -> None:
        from sqlalchemy import text  # noqa: PLC0415 - the application's, if SQLAlchemy

        with engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar()

    password = getattr(getattr(engine, "url", None), "password", None)
    return Bounded(
        "database",
        probe,
        timeout_s=timeout_s,
        warn_above_ms=warn_above_ms,
        secrets=[str(password)] if password else (),
    )


def asyncpg_pool(
    pool: Any,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    timeout_s: float = 2.0,
    warn_above_ms: float | None = 500.0,
) -> Check:
    """``SELECT 1`` through an asyncpg pool, run on the pool's event loop (``loop``, by
    default the loop running where the check is made: make it at the application's
    startup, on its loop)."""
    target = loop or asyncio.get_running_loop()

    def probe() -> None:
        query = pool.fetchval("SELECT 1", timeout=timeout_s)
        future = asyncio.run_coroutine_threadsafe(query, target)
        try:
            future.result(timeout_s)
        finally:
            future.cancel()  # a no-op once it is done

    return Bounded("database", probe, timeout_s=timeout_s, warn_above_ms=warn_above_ms)


def redis_ping(redis: Any, *, timeout_s: float = 1.0, warn_above_ms: float | None = 100.0) -> Check:
    """``PING`` through a redis-py client, or a URL (a client of the check's own is made on
    first use, with ``timeout_s`` on its sockets; the redis extra)."""
    clients: list[Any] = [] if isinstance(redis, str) else [redis]
    password = urllib.parse.urlsplit(redis).password if isinstance(redis, str) else None

    def probe() -> None:
        if not clients:
            from redis import Redis  # noqa: PLC0415 - the redis extra

            clients.append(
                Redis.from_url(redis, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
            )
        if clients[0].ping() is not True:
            raise CheckFailed("cache: PING was not answered PONG")

    return Bounded(
        "cache",
        probe,
        timeout_s=timeout_s,
        warn_above_ms=warn_above_ms,
        secrets=[password] if password else (),
    )


def s3_bucket(
    bucket: str,
    *,
    client: Any = None,
    write_probe: bool = False,
    probe_prefix: str = ".opsmesh-health/",
    timeout_s: float = 3.0,
    warn_above_ms: float | None = 1000.0,
) -> Check:
    """``HeadBucket`` on an S3 bucket through boto3 (``client``, or one of the check's own
    made on first use from boto3's usual configuration, with ``timeout_s`` and no retries;
    the s3 extra); ``write_probe`` also puts and deletes a small object under
    ``probe_prefix`` to prove the bucket writable."""
    clients: list[Any] = [] if client is None else [client]

    def s3() -> Any:
        if not clients:
            import boto3  # noqa: PLC0415 - the s3 extra
            from botocore.config import Config  # noqa: PLC0415

            config = Config(
                connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1}
            )
            clients.append(boto3.client("s3", config=config))
        return clients[0]

    def probe() -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - the s3 extra

        storage = s3()
        try:
            storage.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = _s3_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise CheckFailed(f"storage: bucket {bucket} does not exist") from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise CheckFailed(f"storage: access to bucket {bucket} is denied") from None
            raise CheckFailed(f"storage: bucket {bucket}: {code}") from None
        if not write_probe:
            return
        key = f"{probe_prefix}{uuid.uuid4().hex}"
        try:
            storage.put_object(Bucket=bucket, Key=key, Body=b"opsmesh health probe")
        except ClientError as exc:
            raise CheckFailed(
                f"storage: bucket {bucket} is not writable ({_s3_code(exc)})"
            ) from None
        storage.delete_object(Bucket=bucket, Key=key)

    return Bounded(f"bucket {bucket}", probe, timeout_s=timeout_s, warn_above_ms=warn_above_ms)


def _s3_code(error: Any) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", "unknown"))
