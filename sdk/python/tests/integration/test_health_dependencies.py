"""The database, cache and storage health checks against real servers: a PostgreSQL and a
Redis of this module's own (started by the project's infrastructure classes, so they can be
stopped for the failure cases without touching the session's), a local TCP server that
accepts and never answers, and moto's S3 in server mode with boto3 pointed at it."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import psycopg
import psycopg_pool
import pytest
import redis
import sqlalchemy
from moto.core.authorization import enable_iam_authentication
from moto.server import ThreadedMotoServer

from opsmesh_client.health import (
    asyncpg_pool,
    database,
    redis_ping,
    s3_bucket,
    sqlalchemy_engine,
)
from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.infra.redis import RedisServer

pytestmark = pytest.mark.integration
PASSWORD = "hunter2-not-for-logs"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="opsmesh-health-checks-"))
    path.chmod(0o755)  # PostgreSQL runs as its own user when the tests run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(workdir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(workdir / "pg")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def with_password(dsn: str) -> str:
    """The DSN with a password (trust authentication ignores it): what must not leak."""
    return dsn.replace("postgres@", f"postgres:{PASSWORD}@")


def test_select_one_through_each_driver(postgres: PostgresServer) -> None:
    dsn = with_password(postgres.dsn)
    result = database(lambda: psycopg.connect(dsn, connect_timeout=2))()
    assert result.status == "pass", result
    assert isinstance(result.observed_value, float)
    assert result.output is not None
    assert result.output.startswith("database: ")
    with psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=1, open=True) as pool:
        assert database(pool.connection)().status == "pass"
        with pool.connection() as held:  # a connection lent by the pool stays the pool's
            assert database(lambda: held, close=False)().status == "pass"
            assert not held.closed
    engine = sqlalchemy.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert sqlalchemy_engine(engine)().status == "pass"
    finally:
        engine.dispose()
    slow = database(lambda: psycopg.connect(dsn), warn_above_ms=0)()
    assert slow.status == "warn"
    assert slow.output is not None
    assert "above 0 ms" in slow.output


async def test_select_one_through_an_asyncpg_pool_on_its_loop(postgres: PostgresServer) -> None:
    pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=1)
    try:
        check = asyncpg_pool(pool)  # made on the loop: the pool's
        # The health thread calls it, never the loop itself.
        assert (await asyncio.to_thread(check)).status == "pass"
    finally:
        await pool.close()


def test_a_server_that_never_answers_fails_within_the_timeout(silent_server: int) -> None:
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{silent_server}/opsmesh"
    check = database(lambda: psycopg.connect(dsn), timeout_s=0.3)  # no driver timeout
    result = check()
    assert (result.status, result.output) == ("fail", "database: no answer within 0.3 s")
    # The next round does not pile a second probe onto the one still waiting.
    again = check()
    assert (again.status, again.output) == ("fail", "database: still no answer to an earlier probe")
    # Redis's own client times out its socket at the same 0.3 s: either reason says so.
    cache = redis_ping(f"redis://:{PASSWORD}@127.0.0.1:{silent_server}/0", timeout_s=0.3)()
    assert cache.status == "fail"
    assert cache.output is not None
    assert cache.output.startswith("cache: ")
    assert "no answer within 0.3 s" in cache.output or "Timeout" in cache.output, cache
    assert PASSWORD not in cache.output


def test_redis_ping_by_client_and_by_url(redis_server: RedisServer) -> None:
    by_url = redis_ping(redis_server.url)()
    assert by_url.status == "pass", by_url
    assert isinstance(by_url.observed_value, float)
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert redis_ping(client)().status == "pass"
        assert redis_ping(client, warn_above_ms=0)().status == "warn"
    finally:
        client.close()


def test_stopped_servers_fail_their_checks_with_a_reason(
    postgres: PostgresServer, redis_server: RedisServer
) -> None:
    """Last in the module: it stops this module's servers."""
    dsn = with_password(postgres.dsn)
    engine = sqlalchemy.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://"))
    checks = {
        "psycopg": database(lambda: psycopg.connect(dsn, connect_timeout=2)),
        "sqlalchemy": sqlalchemy_engine(engine),
        "redis": redis_ping(redis_server.url.replace("redis://", f"redis://:{PASSWORD}@")),
    }
    postgres.stop()
    redis_server.stop()
    try:
        results = {name: check() for name, check in checks.items()}
    finally:
        engine.dispose()
    for name, result in results.items():
        assert result.status == "fail", (name, result)
        assert result.output is not None
        assert "refused" in result.output.lower() or "failed" in result.output.lower(), result
        assert PASSWORD not in result.output, result
        assert "no answer within" not in result.output  # refused at once, not timed out
    assert results["redis"].output is not None
    assert results["redis"].output.startswith("cache: ConnectionError")


# -- S3 through moto's server ------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str, key: str = "testing", secret: str = "testing") -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def test_s3_bucket_present_absent_and_writable(s3_endpoint: str) -> None:
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket="media")
    present = s3_bucket("media", client=s3)()
    assert present.status == "pass", present
    assert isinstance(present.observed_value, float)
    writable = s3_bucket("media", client=s3, write_probe=True)()
    assert writable.status == "pass", writable
    assert s3.list_objects_v2(Bucket="media").get("KeyCount") == 0  # the probe is gone
    absent = s3_bucket("no-such-bucket", client=s3)()
    assert (absent.status, absent.output) == (
        "fail",
        "storage: bucket no-such-bucket does not exist",
    )


def test_s3_bucket_that_is_read_only_fails_the_write_probe(s3_endpoint: str) -> None:
    admin = s3_client(s3_endpoint)
    admin.create_bucket(Bucket="archive")
    iam = boto3.client(
        "iam",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_user(UserName="reader")
    # Reading only. (AWS authorizes HeadBucket by s3:ListBucket; moto by s3:HeadBucket.)
    iam.put_user_policy(
        UserName="reader",
        PolicyName="read-only",
        PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",'
            ' "Action": ["s3:HeadBucket", "s3:ListBucket", "s3:GetObject"], "Resource": "*"}]}'
        ),
    )
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = s3_client(s3_endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with enable_iam_authentication():  # the server checks the reader's policy from here
        readable = s3_bucket("archive", client=reader)()
        written = s3_bucket("archive", client=reader, write_probe=True)()
    assert readable.status == "pass", readable
    assert (written.status, written.output) == (
        "fail",
        "storage: bucket archive is not writable (AccessDenied)",
    )
    assert key["SecretAccessKey"] not in str(written.output)


def test_s3_endpoint_that_is_gone_fails_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check's own client (boto3's configuration from the environment, its timeout, no
    retries) against a port nothing listens on any more."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PASSWORD)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    result = s3_bucket("media", timeout_s=5)()
    assert result.status == "fail"
    assert result.output is not None
    assert result.output.startswith("bucket media: EndpointConnectionError"), result
    assert PASSWORD not in result.output
