"""load_settings: validated at start, and a bad variable is named in the error."""

from __future__ import annotations

import os

import pytest
from pydantic import Field

from opsmesh.settings import CommonSettings, SettingsError, load_settings


class ServiceSettings(CommonSettings):
    batch_size: int = Field(100, gt=0, alias="OPSMESH_TEST_BATCH_SIZE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OPSMESH_"):
            monkeypatch.delenv(name)


def test_defaults_match_compose() -> None:
    settings = load_settings(ServiceSettings)
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.pg_dsn.get_secret_value().startswith("postgresql://")
    assert settings.redis_url.get_secret_value() == "redis://127.0.0.1:6379/0"
    assert settings.log_level == "INFO"
    assert settings.shutdown_timeout_s == 6.0
    assert settings.batch_size == 100


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSMESH_KAFKA_BOOTSTRAP", "kafka:9093")
    monkeypatch.setenv("OPSMESH_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("OPSMESH_SHUTDOWN_TIMEOUT_S", "2.5")
    monkeypatch.setenv("OPSMESH_TEST_BATCH_SIZE", "7")
    settings = load_settings(ServiceSettings)
    assert (settings.kafka_bootstrap, settings.log_level) == ("kafka:9093", "DEBUG")
    assert (settings.shutdown_timeout_s, settings.batch_size) == (2.5, 7)


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSMESH_PG_DSN", "postgresql://u:hunter2@db/x")
    settings = load_settings(ServiceSettings)
    assert "hunter2" not in repr(settings)
    assert settings.pg_dsn.get_secret_value() == "postgresql://u:hunter2@db/x"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPSMESH_LOG_LEVEL", "LOUD"),
        ("OPSMESH_SHUTDOWN_TIMEOUT_S", "0"),
        ("OPSMESH_SHUTDOWN_TIMEOUT_S", "600"),
        ("OPSMESH_SHUTDOWN_TIMEOUT_S", "soon"),
        ("OPSMESH_KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("OPSMESH_KAFKA_SASL_MECHANISM", "GSSAPI"),
        ("OPSMESH_TEST_BATCH_SIZE", "-1"),
    ],
)
def test_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings(ServiceSettings)
    message = str(info.value)
    assert message.startswith("invalid settings for ServiceSettings:")
    assert variable in message
    assert isinstance(info.value, SystemExit)


def test_every_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSMESH_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("OPSMESH_TEST_BATCH_SIZE", "zero")
    with pytest.raises(SettingsError) as info:
        load_settings(ServiceSettings)
    message = str(info.value)
    assert "OPSMESH_LOG_LEVEL" in message
    assert "OPSMESH_TEST_BATCH_SIZE" in message
    assert "OPSMESH_KAFKA_BOOTSTRAP" not in message


def test_the_error_does_not_echo_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSMESH_PG_DSN", "postgresql://u:hunter2@db/x")
    monkeypatch.setenv("OPSMESH_LOG_LEVEL", "LOUD")
    with pytest.raises(SettingsError) as info:
        load_settings(ServiceSettings)
    assert "hunter2" not in str(info.value)


def test_consumer_bounds_have_documented_defaults_and_must_be_ordered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(ServiceSettings)
    assert settings.consumer_stall_after_s == 30.0
    assert settings.consumer_give_up_after_s == 300.0
    monkeypatch.setenv("OPSMESH_CONSUMER_STALL_AFTER_S", "60")
    monkeypatch.setenv("OPSMESH_CONSUMER_GIVE_UP_AFTER_S", "30")
    with pytest.raises(SettingsError, match="OPSMESH_CONSUMER_GIVE_UP_AFTER_S"):
        load_settings(ServiceSettings)
