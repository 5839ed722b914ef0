"""The CDN seams between the SDK, health-aggregator, the notifier and the built-in rules,
held by the names each side declares (never retyped here).

- The SDK's asset URLs read health-aggregator's checks of the service the mesh probes the
  providers' canaries under; the built-in CdnProviderFailing rule matches that service.
- The purge events' scopes are the SDK's purge scopes (the notifier maps one to the other).
- CdnPurgeDeadLettered reads the notifier's signal by its declared name and labels.
"""

from __future__ import annotations

from alert_engine.cli import BUILTIN_RULES, builtin_text
from alert_engine.core.rules import parse_rules
from notifier.core.purge_plan import PurgeFailure, to_request
from opsmesh import catalogue
from opsmesh.events.cdn import CDN_HEALTH_SERVICE, CdnPurgeRequested, CdnPurgeScope
from opsmesh_client.cdn import health as sdk_health
from opsmesh_client.cdn.provider import PurgeScope


def _rule(name: str):  # type: ignore[no-untyped-def]
    (rule,) = [r for r in parse_rules(builtin_text(), BUILTIN_RULES) if r.name == name]
    return rule


def test_the_sdk_reads_the_service_the_mesh_probes_and_the_rule_matches() -> None:
    assert sdk_health.DEFAULT_SERVICE == CDN_HEALTH_SERVICE
    rule = _rule("CdnProviderFailing")
    assert rule.signal == catalogue.HEALTH_CHECK_STATUS.name
    assert rule.matchers == {"service": CDN_HEALTH_SERVICE}
    assert set(rule.by or ()) <= set(catalogue.HEALTH_CHECK_STATUS.labels)


def test_every_event_scope_is_an_sdk_scope_the_notifier_maps_to() -> None:
    assert {s.value for s in CdnPurgeScope} == {s.value for s in PurgeScope}
    for scope in CdnPurgeScope:
        values = [] if scope is CdnPurgeScope.ALL else ["x"]
        event = CdnPurgeRequested(id="p", scope=scope, values=values, source="t", requested_at=0.0)
        assert to_request(event).scope is PurgeScope(scope.value)


def test_the_purge_rule_reads_the_notifiers_signal() -> None:
    rule = _rule("CdnPurgeDeadLettered")
    spec = catalogue.CDN_PURGE_DEAD_LETTERED
    assert rule.signal == spec.name
    assert set(rule.by or ()) <= set(spec.labels)
    assert spec.emitted_by is catalogue.Service.NOTIFIER
    assert {f.value for f in PurgeFailure} == set(spec.labels["failure"].split(" | "))
