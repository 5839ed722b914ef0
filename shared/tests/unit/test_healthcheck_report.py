"""The health check's verdict, table and JSON, and the lag verdict per group (pure)."""

from __future__ import annotations

import json

import click
import pytest
from aiokafka import TopicPartition

from opsmesh.cli.health_check import _services
from opsmesh.healthcheck.probes import database_target, lag_results, redis_target
from opsmesh.healthcheck.report import CheckResult, Status, as_json, as_table, exit_code

OK = CheckResult("broker", "127.0.0.1:9092", Status.OK, "1 broker(s), 10 topics", 0.012)
DOWN = CheckResult("service", "notifier", Status.FAIL, "HTTP 503: {...}", 0.5)


def test_exit_code_is_zero_only_when_every_check_passed() -> None:
    assert exit_code([OK]) == 0
    assert exit_code([OK, DOWN]) == 1
    assert exit_code([]) == 1  # nothing checked is not healthy


def test_the_table_names_each_check_and_the_verdict() -> None:
    table = as_table([OK, DOWN])
    lines = table.splitlines()
    assert lines[0].split() == ["check", "target", "status", "ms", "detail"]
    assert lines[2].split()[:3] == ["broker", "127.0.0.1:9092", "OK"]
    assert "service  notifier" in table
    assert "FAIL" in table
    assert lines[-1] == "UNHEALTHY: 1 of 2 failed"
    assert as_table([OK]).splitlines()[-1] == "healthy"


def test_the_json_is_machine_readable() -> None:
    document = json.loads(as_json([OK, DOWN]))
    assert document["healthy"] is False
    assert document["checks"][1] == {
        "check": "service",
        "target": "notifier",
        "status": "fail",
        "detail": "HTTP 503: {...}",
        "seconds": 0.5,
    }


def test_lag_fails_above_the_bound_and_names_the_worst_partition() -> None:
    lags = {
        "opsmesh.notifier": {TopicPartition("opsmesh.notifications", 3): 40},
        "opsmesh.alert-engine": {
            TopicPartition("opsmesh.alerts", 0): 2,
            TopicPartition("opsmesh.alerts", 1): 0,
        },
    }
    results = {r.target: r for r in lag_results(lags, max_lag=10, seconds=0.1)}
    assert results["opsmesh.notifier"].status is Status.FAIL
    assert "40 record(s) behind (max 10), most on opsmesh.notifications[3]: 40" in (
        results["opsmesh.notifier"].detail
    )
    assert results["opsmesh.alert-engine"].status is Status.OK


def test_no_mesh_group_at_all_fails() -> None:
    (result,) = lag_results({}, max_lag=10, seconds=0.1)
    assert result.failed
    assert "are the services running" in result.detail


def test_targets_never_show_credentials() -> None:
    assert database_target("postgresql://opsmesh:s3cret@db:5433/opsmesh") == "db:5433/opsmesh"
    assert redis_target("redis://:s3cret@cache:6380/0") == "cache:6380"


def test_services_replace_defaults_and_add_others() -> None:
    services = _services(("notifier=http://n:1", "console=http://c:8086"))
    assert services["notifier"] == "http://n:1"
    assert services["console"] == "http://c:8086"
    assert services["metrics-ingest"] == "http://127.0.0.1:8081"
    with pytest.raises(click.BadParameter, match="NAME=http"):
        _services(("notifier",))
