"""Per-service policies, the overall status, health+json documents, probe outcomes, and
the owned checks' partition ownership and heap-driven expiry."""

from __future__ import annotations

import pytest

from health_aggregator.core.checks import CheckState, OwnedChecks
from health_aggregator.core.policy import Policy, Reason, aggregate, overall, service_health
from health_aggregator.core.probes import (
    ProbeKind,
    ProbeSpec,
    Why,
    disk_outcome,
    failed,
    http_outcome,
    next_delay,
    parse_specs,
    to_report,
)
from health_aggregator.core.render import (
    fleet_document,
    http_status,
    self_document,
    service_document,
)
from opsmesh.events.health import HealthReported, HealthStatus

T0 = 1_700_000_000.0
PASS, WARN, FAIL = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL


def check(
    instance: str, status: HealthStatus, *, name: str = "db", critical: bool = True
) -> CheckState:
    return CheckState("api", instance, name, status, critical, None, T0, T0 + 30, 0)


# -- policies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "policy", "status", "reason"),
    [
        ([PASS, PASS, PASS], Policy.ALL, PASS, Reason.ALL_PASSING),
        ([PASS, PASS, FAIL], Policy.ALL, FAIL, Reason.POLICY_NOT_MET),
        ([PASS, WARN, PASS], Policy.ALL, WARN, Reason.DEGRADED),
        ([PASS, PASS, FAIL], Policy.QUORUM, WARN, Reason.DEGRADED),
        ([PASS, FAIL, FAIL], Policy.QUORUM, FAIL, Reason.POLICY_NOT_MET),
        ([PASS, FAIL], Policy.QUORUM, FAIL, Reason.POLICY_NOT_MET),  # a tie is no majority
        ([WARN, FAIL, FAIL], Policy.ANY, WARN, Reason.DEGRADED),
        ([FAIL, FAIL], Policy.ANY, FAIL, Reason.POLICY_NOT_MET),
    ],
)
def test_policies(
    statuses: list[HealthStatus], policy: Policy, status: HealthStatus, reason: Reason
) -> None:
    checks = [check(f"i-{n}", s) for n, s in enumerate(statuses)]
    health = service_health("api", checks, policy)
    assert (health.status, health.reason) == (status, reason)
    assert health.total == len(statuses)


def test_instance_status_is_worst_critical_and_non_critical_fail_only_warns() -> None:
    checks = [
        check("i-1", PASS),
        check("i-1", FAIL, name="cache", critical=False),
        check("i-2", PASS),
        check("i-2", FAIL, name="disk"),
    ]
    health = service_health("api", checks, Policy.QUORUM)
    assert [(i.instance, i.status) for i in health.instances] == [("i-1", WARN), ("i-2", FAIL)]
    assert health.status is FAIL, "1 of 2 healthy is no majority"


def test_aggregate_uses_each_services_policy_and_overall_is_worst() -> None:
    checks = [
        check("i-1", FAIL),
        check("i-2", PASS),
        CheckState("web", "w-1", "http", PASS, True, None, T0, T0 + 30),
    ]
    services = aggregate(checks, {"api": Policy.ANY})
    assert [(s.service, s.status, s.policy) for s in services] == [
        ("api", WARN, Policy.ANY),
        ("web", PASS, Policy.ALL),
    ]
    assert overall(services) is WARN
    assert overall([]) is PASS


# -- health+json --------------------------------------------------------------------------


def test_fleet_document_follows_the_draft() -> None:
    services = aggregate([check("i-1", FAIL)], {})
    doc = fleet_document(services, service_id="agg-1", version="1.0", now=T0)
    assert doc["status"] == "fail"
    assert doc["output"] == "failing: api"
    (entry,) = doc["checks"]["api:instances"]
    assert entry["status"] == "fail"
    assert entry["componentType"] == "system"
    assert entry["time"] == "2023-11-14T22:13:20Z"
    assert http_status(FAIL) == 503
    assert http_status(WARN) == http_status(PASS) == 200


def test_service_document_lists_each_instance_under_its_check() -> None:
    health = service_health("api", [check("i-1", PASS), check("i-2", WARN)], Policy.ALL)
    doc = service_document(health, version="1")
    assert doc["status"] == "warn"
    assert [e["componentId"] for e in doc["checks"]["db:status"]] == ["i-1", "i-2"]
    assert "output" in doc


def test_self_document() -> None:
    doc = self_document(FAIL, [("kafka", "ok"), ("postgres", "timeout")], version="1")
    assert doc["checks"]["kafka:status"][0]["status"] == "pass"
    assert doc["checks"]["postgres:status"][0] == {
        "componentType": "component",
        "status": "fail",
        "output": "timeout",
    }


# -- probes -------------------------------------------------------------------------------


def spec(**fields: object) -> ProbeSpec:
    base: dict[str, object] = {"service": "web", "check": "home", "kind": ProbeKind.HTTP}
    base["target"] = "https://example.test/"
    base.update(fields)
    return ProbeSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "code", "body", "cert_days", "status", "why"),
    [
        ({}, 200, "ok", 90.0, PASS, Why.OK),
        ({}, 500, "ok", 90.0, FAIL, Why.UNEXPECTED_STATUS),
        ({"expect_status": (200, 200)}, 302, "", None, FAIL, Why.UNEXPECTED_STATUS),
        ({"body_contains": "healthy"}, 200, "sick", None, FAIL, Why.BODY_MISMATCH),
        ({"body_regex": "^ok$"}, 200, "ok", None, PASS, Why.OK),
        ({"body_regex": "^ok$"}, 200, "not ok", None, FAIL, Why.BODY_MISMATCH),
        ({}, 200, "", 3.0, WARN, Why.CERT_EXPIRING),
        ({}, 200, "", -1.0, FAIL, Why.CERT_EXPIRED),
        ({"latency_warn_ms": 100}, 200, "", None, WARN, Why.SLOW),
    ],
)
def test_http_outcomes(  # noqa: PLR0917 - one parametrised case per row
    fields: dict, code: int, body: str, cert_days: float | None, status: HealthStatus, why: Why
) -> None:
    outcome = http_outcome(
        spec(**fields), status_code=code, latency_ms=250.0, body=body, cert_days=cert_days
    )
    assert (outcome.status, outcome.why) == (status, why)


def test_disk_and_failure_outcomes() -> None:
    disk = spec(kind=ProbeKind.DISK, target="/")
    assert disk_outcome(disk, 50.0).status is PASS
    assert disk_outcome(disk, 8.0).why is Why.DISK_LOW
    assert disk_outcome(disk, 2.0).why is Why.DISK_CRITICAL
    assert failed("refused").why is Why.UNREACHABLE
    assert failed("slow", timed_out=True).why is Why.TIMEOUT


def test_jitter_stays_within_its_fraction() -> None:
    assert next_delay(10.0, 0.1, 0.0) == pytest.approx(9.0)
    assert next_delay(10.0, 0.1, 0.5) == pytest.approx(10.0)
    assert next_delay(10.0, 0.1, 0.999999) == pytest.approx(11.0, abs=1e-4)


def test_a_probe_result_is_a_report_with_three_intervals_of_ttl() -> None:
    outcome = http_outcome(spec(), status_code=200, latency_ms=5.0, body="", cert_days=None)
    report = to_report(spec(interval_s=5.0), outcome, T0)
    assert (report.service, report.instance, report.check) == ("web", "probe", "home")
    assert (report.status, report.ttl_s, report.reported_at) == (PASS, 15.0, T0)
    assert report.observed_value == 5.0


def test_probe_specs_are_validated_with_their_index() -> None:
    good = {"service": "db", "check": "pg", "kind": "postgres", "target": "postgresql://x"}
    assert parse_specs([good])[0].kind is ProbeKind.POSTGRES
    with pytest.raises(ValueError, match="probe #1"):
        parse_specs([good, {**good, "kind": "ftp"}])
    with pytest.raises(ValueError, match="probe #0"):
        parse_specs([{**good, "interval_s": 0}])
    with pytest.raises(ValueError, match="list"):
        parse_specs({"probes": []})


# -- ownership and expiry -------------------------------------------------------------


def beat(instance: str, at: float, ttl: float = 10.0) -> HealthReported:
    return HealthReported(service="api", instance=instance, status=PASS, ttl_s=ttl, reported_at=at)


def test_a_revoked_partition_drops_its_checks_and_they_no_longer_expire_here() -> None:
    owned = OwnedChecks()
    owned.observe(beat("i-1", T0), partition=0)
    owned.observe(beat("i-2", T0), partition=1)
    dropped = owned.drop_partitions([1])
    assert [s.instance for s in dropped] == ["i-2"]
    assert [c.state.instance for c in owned.expire(T0 + 100)] == ["i-1"]


def test_a_refreshed_heartbeat_moves_its_deadline() -> None:
    owned = OwnedChecks()
    owned.observe(beat("i-1", T0), partition=0)
    owned.observe(beat("i-1", T0 + 8), partition=0)
    assert owned.expire(T0 + 10) == [], "the first deadline is stale"
    (change,) = owned.expire(T0 + 18)
    assert change.state.partition == 0
    assert len(owned) == 1


def test_a_probes_file_that_is_not_yaml_is_refused_without_quoting_the_line(tmp_path) -> None:
    from health_aggregator.pipeline.probes import load_specs  # noqa: PLC0415

    path = tmp_path / "probes.yml"
    path.write_text(
        "- service: api\n  check: http\n  kind: http\n"
        "  target: [https://probe:s3cr3tPW@api.internal/health\n"
    )
    with pytest.raises(ValueError, match=r"not valid YAML: line \d+, column \d+") as refused:
        load_specs(path)
    assert "s3cr3t" not in str(refused.value)
