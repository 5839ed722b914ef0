"""The built-in rules: the nine alerts the issue names, the slow-route alert of the
producer SDK's issue (13), the cache hit-ratio alert and the two CDN alerts of issue 15,
each with a runbook, each tested."""

from __future__ import annotations

from importlib import resources

from alert_engine.cli import BUILTIN_RULES, BUILTIN_TESTS, builtin_text
from alert_engine.core.rules import RuleKind, parse_rules
from alert_engine.core.ruletest import rule_files, run_tests

EXPECTED = {
    "HighErrorRate": RuleKind.THRESHOLD,
    "HighLatencyP95": RuleKind.THRESHOLD,
    "SlowQueryRegression": RuleKind.FINDING,
    "NPlusOneDetected": RuleKind.FINDING,
    "MissingIndexAdvised": RuleKind.FINDING,
    "SlowRoute": RuleKind.FINDING,
    "CacheHitRatioBelowTarget": RuleKind.THRESHOLD,
    "ServiceUnhealthy": RuleKind.FINDING,
    "HeartbeatMissing": RuleKind.FINDING,
    "NotificationDeadLettersGrowing": RuleKind.RATE,
    "ConsumerLagGrowing": RuleKind.RATE,
    "CdnProviderFailing": RuleKind.FINDING,
    "CdnPurgeDeadLettered": RuleKind.FINDING,
}


def test_the_builtin_rules_are_the_ones_the_issues_name() -> None:
    rules = parse_rules(builtin_text(), BUILTIN_RULES)
    assert {r.name: r.kind for r in rules} == EXPECTED


def test_every_builtin_rule_has_a_runbook_and_a_severity() -> None:
    for rule in parse_rules(builtin_text(), BUILTIN_RULES):
        assert rule.annotations["runbook_url"].startswith("runbooks/"), rule.name
        assert rule.labels["severity"] in {"page", "ticket", "info"}, rule.name
        assert rule.annotations["summary"], rule.name


def test_the_builtin_rule_tests_cover_every_rule_and_pass() -> None:
    text = builtin_text(BUILTIN_TESTS)
    assert rule_files(text, BUILTIN_TESTS) == [BUILTIN_RULES]
    results = run_tests(text, BUILTIN_TESTS, lambda name: parse_rules(builtin_text(name), name))
    failures = {r.name: r.failures for r in results if not r.passed}
    assert failures == {}
    tested = {name for name in EXPECTED if any(name in r.name for r in results)}
    assert tested == set(EXPECTED)


def test_the_rules_ship_as_package_resources() -> None:
    package = resources.files("alert_engine.builtin_rules")
    assert package.joinpath(BUILTIN_RULES).is_file()
    assert package.joinpath(BUILTIN_TESTS).is_file()
