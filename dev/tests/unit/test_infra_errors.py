"""When a part cannot be installed or started, the error says which and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsmesh_dev.infra import InfrastructureUnavailable
from opsmesh_dev.infra import kafka as kafka_part
from opsmesh_dev.infra import postgres as postgres_part
from opsmesh_dev.infra import redis as redis_part
from opsmesh_dev.infra.redis import RedisServer


def test_missing_maven_names_maven_and_the_kafka_override(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPSMESH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kafka_part.shutil, "which", lambda _: None)
    with pytest.raises(InfrastructureUnavailable) as info:
        kafka_part.ensure_jars()
    assert info.value.part == "Kafka"
    assert "Maven" in str(info.value)
    assert "OPSMESH_KAFKA_BOOTSTRAP" in str(info.value)


def test_unreachable_maven_central_names_it(tmp_path: Path, monkeypatch) -> None:
    fake_mvn = tmp_path / "mvn"
    fake_mvn.write_text(
        "#!/bin/sh\necho 'Could not transfer artifact: Network is unreachable' >&2\nexit 1\n"
    )
    fake_mvn.chmod(0o755)
    monkeypatch.setenv("OPSMESH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kafka_part.shutil, "which", lambda _: str(fake_mvn))
    with pytest.raises(InfrastructureUnavailable) as info:
        kafka_part.ensure_jars()
    message = str(info.value)
    assert "Maven Central" in message
    assert "Network is unreachable" in message
    assert "OPSMESH_KAFKA_BOOTSTRAP" in message
    assert not (tmp_path / "cache" / "kafka-4.1.1" / "libs").exists(), "no half-filled cache"


def test_missing_postgresql_names_the_packages_and_the_dsn_override(monkeypatch) -> None:
    monkeypatch.setenv("OPSMESH_PG_BINDIR", "/nonexistent/bin")
    with pytest.raises(InfrastructureUnavailable) as info:
        postgres_part.pg_bindir()
    assert "postgresql-15" in str(info.value)
    assert "OPSMESH_PG_DSN" in str(info.value)


def test_missing_redis_names_the_package_and_the_url_override(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(redis_part.shutil, "which", lambda _: None)
    with pytest.raises(InfrastructureUnavailable) as info:
        RedisServer(tmp_path).start()
    assert "redis-server" in str(info.value)
    assert "OPSMESH_REDIS_URL" in str(info.value)
