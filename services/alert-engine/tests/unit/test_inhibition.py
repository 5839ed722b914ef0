"""Inhibition: sources mute targets sharing the ``equal`` labels, with the self-inhibition
guard."""

from __future__ import annotations

from collections.abc import Mapping

from alert_engine.core.inhibition import Inhibitor, InhibitRule
from alert_engine.core.matchers import parse_matchers
from opsmesh.labels import fingerprint


def rule(source: str, target: str, *equal: str, name: str = "") -> InhibitRule:
    return InhibitRule(tuple(parse_matchers(source)), tuple(parse_matchers(target)), equal, name)


def firing(*label_sets: Mapping[str, str]) -> list[tuple[str, Mapping[str, str]]]:
    return [(fingerprint(labels), labels) for labels in label_sets]


CRIT = rule('{severity="critical"}', '{severity="warning"}', "alertname", "cluster")


def test_source_mutes_target_with_equal_labels() -> None:
    source = {"alertname": "Lag", "cluster": "a", "severity": "critical"}
    inhibitor = Inhibitor([CRIT], firing(source))
    found = inhibitor.inhibited_by({"alertname": "Lag", "cluster": "a", "severity": "warning"})
    assert found is not None
    assert found.rule is CRIT
    assert found.source_fingerprint == fingerprint(source)


def test_equal_labels_must_be_equal() -> None:
    inhibitor = Inhibitor(
        [CRIT], firing({"alertname": "Lag", "cluster": "a", "severity": "critical"})
    )
    assert (
        inhibitor.inhibited_by({"alertname": "Lag", "cluster": "b", "severity": "warning"}) is None
    )
    assert (
        inhibitor.inhibited_by({"alertname": "Cpu", "cluster": "a", "severity": "warning"}) is None
    )
    # labels outside `equal` do not matter
    assert inhibitor.inhibited_by(
        {"alertname": "Lag", "cluster": "a", "severity": "warning", "host": "x"}
    )


def test_a_missing_equal_label_equals_the_empty_value() -> None:
    inhibitor = Inhibitor([CRIT], firing({"alertname": "Lag", "severity": "critical"}))
    assert inhibitor.inhibited_by({"alertname": "Lag", "severity": "warning"}) is not None
    assert inhibitor.inhibited_by({"alertname": "Lag", "cluster": "", "severity": "warning"})
    assert inhibitor.inhibited_by({"alertname": "Lag", "cluster": "a", "severity": "warning"}) is (
        None
    )


def test_no_equal_labels_means_any_source_mutes_every_target() -> None:
    r = rule('{alertname="ClusterDown"}', '{severity="warning"}')
    inhibitor = Inhibitor([r], firing({"alertname": "ClusterDown", "cluster": "x"}))
    assert inhibitor.inhibited_by({"alertname": "Disk", "cluster": "y", "severity": "warning"})


def test_source_must_match_the_source_matchers() -> None:
    inhibitor = Inhibitor([CRIT], firing({"alertname": "Lag", "cluster": "a", "severity": "info"}))
    assert inhibitor.inhibited_by({"alertname": "Lag", "cluster": "a", "severity": "warning"}) is (
        None
    )


def test_target_must_match_the_target_matchers() -> None:
    inhibitor = Inhibitor(
        [CRIT], firing({"alertname": "Lag", "cluster": "a", "severity": "critical"})
    )
    assert inhibitor.inhibited_by({"alertname": "Lag", "cluster": "a", "severity": "info"}) is None
    assert inhibitor.inhibited_by({"alertname": "Lag", "cluster": "a"}) is None


def test_no_firing_sources_no_inhibition() -> None:
    inhibitor = Inhibitor([CRIT], [])
    assert inhibitor.inhibited_by({"alertname": "Lag", "severity": "warning"}) is None
    assert Inhibitor([], firing({"severity": "critical"})).inhibited_by(
        {"severity": "warning"}
    ) is (None)


# A rule whose sides overlap: every "Lag" alert mutes other "Lag" alerts of its cluster.
BOTH = rule('{alertname="Lag"}', '{alertname="Lag", severity!="critical"}', "cluster")


def test_an_alert_matching_both_sides_does_not_inhibit_itself() -> None:
    lonely = {"alertname": "Lag", "cluster": "a", "severity": "warning"}
    assert Inhibitor([BOTH], firing(lonely)).inhibited_by(lonely) is None


def test_both_sided_alerts_do_not_inhibit_each_other() -> None:
    one = {"alertname": "Lag", "cluster": "a", "severity": "warning", "host": "1"}
    two = {"alertname": "Lag", "cluster": "a", "severity": "warning", "host": "2"}
    inhibitor = Inhibitor([BOTH], firing(one, two))
    assert inhibitor.inhibited_by(one) is None
    assert inhibitor.inhibited_by(two) is None


def test_a_source_only_alert_still_inhibits_a_both_sided_one() -> None:
    source_only = {"alertname": "Lag", "cluster": "a", "severity": "critical"}
    both = {"alertname": "Lag", "cluster": "a", "severity": "warning"}
    inhibitor = Inhibitor([BOTH], firing(source_only, both))
    found = inhibitor.inhibited_by(both)
    assert found is not None
    assert found.source_fingerprint == fingerprint(source_only)
    # the source-only alert is no target, so nothing inhibits it
    assert inhibitor.inhibited_by(source_only) is None


def test_a_both_sided_source_inhibits_a_target_only_alert() -> None:
    r = rule('{alertname="Lag"}', '{severity="warning"}', "cluster")
    both = {"alertname": "Lag", "cluster": "a", "severity": "warning"}
    target_only = {"alertname": "Disk", "cluster": "a", "severity": "warning"}
    inhibitor = Inhibitor([r], firing(both, target_only))
    found = inhibitor.inhibited_by(target_only)
    assert found is not None
    assert found.source_fingerprint == fingerprint(both)
    assert inhibitor.inhibited_by(both) is None


def test_multiple_rules() -> None:
    node_down = rule('{alertname="NodeDown"}', '{alertname=~"Disk.*|Cpu.*"}', "instance", name="n")
    rules = [CRIT, node_down]
    inhibitor = Inhibitor(rules, firing({"alertname": "NodeDown", "instance": "i1"}))
    found = inhibitor.inhibited_by({"alertname": "DiskFull", "instance": "i1"})
    assert found is not None
    assert found.rule.name == "n"
    assert inhibitor.inhibited_by({"alertname": "DiskFull", "instance": "i2"}) is None
    # a rule that does not apply does not stop a later one from applying
    crit = {"alertname": "CpuHot", "cluster": "a", "severity": "critical", "instance": "i1"}
    both = Inhibitor(rules, firing(crit, {"alertname": "NodeDown", "instance": "i1"}))
    hot = both.inhibited_by({"alertname": "CpuHot", "instance": "i1", "severity": "page"})
    assert hot is not None
    assert hot.rule is node_down


def test_equal_key() -> None:
    assert CRIT.equal_key({"alertname": "A", "x": "y"}) == ("A", "")
