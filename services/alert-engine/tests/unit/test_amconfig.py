"""Alertmanager configuration files: a realistic one parses as Alertmanager reads it, and
errors say where they are."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from alert_engine.core.amconfig import (
    DEFAULT_RESOLVE_TIMEOUT_S,
    ConfigError,
    EngineConfig,
    Receiver,
    parse_config,
)
from alert_engine.core.matchers import Matcher, MatchType
from alert_engine.core.routing import Route

CONFIG = textwrap.dedent(
    """\
    global:
      resolve_timeout: 2m
      slack_api_url: https://hooks.example/x   # applied to db's slack_configs
      smtp_smarthost: mail.example.org:587
      smtp_from: am@example.org
    templates: ['/etc/am/*.tmpl']
    route:
      receiver: default
      group_by: [alertname, cluster]
      group_wait: 10s
      group_interval: 1m
      repeat_interval: 150s          # not a multiple of 1m: rounds up to 3m
      labels: {tier: base}
      routes:
        - receiver: audit
          continue: true
          group_by: ['...']
          matchers: ['env="prod"']
        - receiver: db
          matchers:
            - team = "db"
            - 'severity=~"page|critical"'
          group_wait: 1m
          mute_time_intervals: [weekends]
          labels: {owner: dba}
          routes:
            - receiver: db-pager
              match: {service: mysql}
              match_re: {instance: 'db-[0-9]+'}
              repeat_interval: 1h
            - matchers: ['{region!="eu", zone!~"a|b"}']
              group_by: []
        - receiver: web
          active_time_intervals: [business-hours]
          matchers: [team=web]
    time_intervals:
      - name: business-hours
        time_intervals:
          - weekdays: ['monday:friday']
            times: [{start_time: '09:00', end_time: '17:00'}]
            location: Europe/Berlin
    mute_time_intervals:
      - name: weekends
        time_intervals:
          - weekdays: [saturday, sunday]
    inhibit_rules:
      - name: critical-mutes-warning
        source_matchers: [severity="critical"]
        target_matchers: [severity="warning"]
        equal: [alertname, cluster]
      - source_match: {alertname: NodeDown}
        target_match_re: {alertname: 'Disk.*|Cpu.*'}
        equal: [instance]
    receivers:
      - name: default
      - name: audit
        webhook_configs: [{url: 'http://audit/hook'}]
      - name: db
        labels: {team: db}
        slack_configs: [{channel: '#db'}]
        pagerduty_configs: [{routing_key: k}]
      - name: db-pager
        pagerduty_configs: [{routing_key: k2}]
        email_configs: []
      - name: web
        email_configs: [{to: web@example.org}]
    """
)


@pytest.fixture(scope="module")
def cfg() -> EngineConfig:
    return parse_config(CONFIG)


def test_global_and_original(cfg: EngineConfig) -> None:
    assert cfg.resolve_timeout_s == 120
    # As Alertmanager's config.original: the configuration, its secrets masked.
    shown = yaml.safe_load(cfg.original)
    # Alertmanager's global defaults are applied and shown.
    assert shown["global"] == {
        "resolve_timeout": "2m",
        "slack_api_url": "<secret>",
        "smtp_smarthost": "mail.example.org:587",
        "smtp_from": "am@example.org",
        "smtp_hello": "localhost",
        "smtp_require_tls": True,
        "pagerduty_url": "https://events.pagerduty.com/v2/enqueue",
        "opsgenie_api_url": "https://api.opsgenie.com/",
    }
    assert shown["route"] == yaml.safe_load(CONFIG)["route"]
    # Each integration shown with the defaults Alertmanager applies (send_resolved, url).
    assert shown["receivers"][2]["pagerduty_configs"] == [
        {
            "routing_key": "<secret>",
            "send_resolved": True,
            "url": "https://events.pagerduty.com/v2/enqueue",
        }
    ]
    # A webhook url keeps scheme and host, so amtool 0.25 can parse it back.
    (hook,) = shown["receivers"][1]["webhook_configs"]
    assert hook == {"url": "http://audit/<secret>", "send_resolved": True}
    assert "routing_key: k" not in cfg.original
    assert parse_config("route: {receiver: r}\nreceivers: [{name: r}]").resolve_timeout_s == (
        DEFAULT_RESOLVE_TIMEOUT_S
    )


def test_root_route(cfg: EngineConfig) -> None:
    root: Route = cfg.route
    assert root.receiver == "default"
    assert root.key == "{}"
    assert root.id == "0"
    assert root.matchers == ()
    assert root.group_by == ("alertname", "cluster")
    assert (root.group_wait_s, root.group_interval_s, root.repeat_interval_s) == (10, 60, 180)
    assert root.labels == {"tier": "base"}
    assert [r.id for r in root.routes] == ["0.0", "0.1", "0.2"]


def test_continue_and_group_by_all(cfg: EngineConfig) -> None:
    audit = cfg.route.routes[0]
    assert audit.receiver == "audit"
    assert audit.continue_matching
    assert audit.groups_by_all
    assert audit.key == '{}/{env="prod"}'
    assert not cfg.route.routes[1].continue_matching


def test_timers_are_inherited_and_overridden(cfg: EngineConfig) -> None:
    db = cfg.route.routes[1]
    pager, other = db.routes
    assert (db.group_wait_s, db.group_interval_s, db.repeat_interval_s) == (60, 60, 180)
    assert (pager.group_wait_s, pager.group_interval_s, pager.repeat_interval_s) == (60, 60, 3600)
    assert other.group_wait_s == 60
    # receiver and group_by inherited; an explicit empty group_by overrides the parent's
    assert pager.receiver == "db-pager"
    assert pager.group_by == ("alertname", "cluster")
    assert other.receiver == "db"
    assert other.group_by == ()
    # route labels are inherited and merged
    assert db.labels == {"tier": "base", "owner": "dba"}
    assert pager.labels == {"tier": "base", "owner": "dba"}


def test_matchers_match_and_match_re(cfg: EngineConfig) -> None:
    db = cfg.route.routes[1]
    assert set(db.matchers) == {
        Matcher("team", MatchType.EQUAL, "db"),
        Matcher("severity", MatchType.REGEX, "page|critical"),
    }
    pager, other = db.routes
    assert set(pager.matchers) == {
        Matcher("service", MatchType.EQUAL, "mysql"),
        Matcher("instance", MatchType.REGEX, "db-[0-9]+"),
    }
    assert set(other.matchers) == {
        Matcher("region", MatchType.NOT_EQUAL, "eu"),
        Matcher("zone", MatchType.NOT_REGEX, "a|b"),
    }
    assert cfg.route.routes[2].matchers == (Matcher("team", MatchType.EQUAL, "web"),)


def test_route_keys_sort_matchers_as_alertmanager(cfg: EngineConfig) -> None:
    # Alertmanager sorts a route's matchers (name, value, type) before printing its key.
    db = cfg.route.routes[1]
    assert db.key == '{}/{severity=~"page|critical",team="db"}'
    assert db.routes[0].key == (
        '{}/{severity=~"page|critical",team="db"}/{instance=~"db-[0-9]+",service="mysql"}'
    )
    assert db.routes[1].key.endswith('/{region!="eu",zone!~"a|b"}')


def test_walk_of_the_parsed_tree(cfg: EngineConfig) -> None:
    def to(**labels: str) -> list[str]:
        return [r.receiver for r in cfg.route.match(labels)]

    assert to(env="prod", team="db", severity="page", service="mysql", instance="db-1") == [
        "audit",
        "db-pager",
    ]
    assert to(team="db", severity="page", region="us", zone="c") == ["db"]
    assert to(team="db", severity="critical", region="us", zone="a") == ["db"]
    assert to(team="db", severity="critical", region="eu") == ["db"]
    assert to(team="web") == ["web"]
    assert to(team="db", severity="info") == ["default"]


def test_time_intervals(cfg: EngineConfig) -> None:
    assert set(cfg.time_intervals) == {"business-hours", "weekends"}
    db, web = cfg.route.routes[1], cfg.route.routes[2]
    assert db.mute_time_intervals == ("weekends",)
    assert web.active_time_intervals == ("business-hours",)
    assert cfg.time_intervals["business-hours"].specs[0].location == "Europe/Berlin"


def test_time_intervals_are_not_inherited(cfg: EngineConfig) -> None:
    # Alertmanager copies mute/active_time_intervals from each route itself (dispatch/route.go;
    # alertmanager#3211, #3538 closed unmerged): a parent's mute does not mute its children.
    pager, other = cfg.route.routes[1].routes
    assert pager.mute_time_intervals == ()
    assert other.mute_time_intervals == ()


def test_inhibit_rules(cfg: EngineConfig) -> None:
    first, second = cfg.inhibit_rules
    assert first.name == "critical-mutes-warning"
    assert first.source_matchers == (Matcher("severity", MatchType.EQUAL, "critical"),)
    assert first.target_matchers == (Matcher("severity", MatchType.EQUAL, "warning"),)
    assert first.equal == ("alertname", "cluster")
    assert second.name == ""
    assert second.source_matchers == (Matcher("alertname", MatchType.EQUAL, "NodeDown"),)
    assert second.target_matchers == (Matcher("alertname", MatchType.REGEX, "Disk.*|Cpu.*"),)
    assert second.equal == ("instance",)


def test_receivers(cfg: EngineConfig) -> None:
    assert [r.name for r in cfg.receivers] == ["default", "audit", "db", "db-pager", "web"]
    by_name = {r.name: r for r in cfg.receivers}
    assert by_name["default"] == Receiver("default", {}, ())
    assert by_name["db"] == Receiver("db", {"team": "db"}, ("slack", "pagerduty"))
    assert by_name["db-pager"].integrations == ("pagerduty",)  # empty lists do not count
    assert by_name["web"].integrations == ("email",)


def test_root_group_by_defaults_to_one_group() -> None:
    cfg = parse_config("route: {receiver: r}\nreceivers: [{name: r}]")
    assert cfg.route.group_by == ()
    assert (cfg.route.group_wait_s, cfg.route.group_interval_s) == (30, 300)
    assert cfg.route.repeat_interval_s == 4 * 3600


BASE_RECEIVERS = "receivers: [{name: r}, {name: s}]\n"


def bad(text: str, *fragments: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text))
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_bad_matcher_is_located() -> None:
    bad(
        """\
        route:
          receiver: r
          routes:
            - matchers: [a="1"]
            - matchers: ['b=~"("', c="2"]
        receivers: [{name: r}]
        """,
        "route.routes[1].matchers[0]",
    )


def test_bad_nested_matcher_is_located() -> None:
    bad(
        """\
        route:
          receiver: r
          routes:
            - routes: [{matchers: ['1x="y"']}]
        receivers: [{name: r}]
        """,
        "route.routes[0].routes[0].matchers[0]",
    )


def test_undefined_receiver() -> None:
    bad(
        "route: {receiver: r, routes: [{receiver: nope}]}\n" + BASE_RECEIVERS,
        "route.routes[0].receiver",
        "nope",
    )
    bad("route: {receiver: nope}\n" + BASE_RECEIVERS, "route.receiver", "nope")


def test_root_needs_a_receiver_and_a_route() -> None:
    bad("route: {group_by: [a]}\n" + BASE_RECEIVERS, "route", "receiver")
    bad(BASE_RECEIVERS, "route")


def test_undefined_time_interval() -> None:
    bad(
        "route: {receiver: r, routes: [{mute_time_intervals: [nights]}]}\n" + BASE_RECEIVERS,
        "route.routes[0].mute_time_intervals",
        "nights",
    )
    bad(
        "route: {receiver: r, routes: [{active_time_intervals: [days]}]}\n" + BASE_RECEIVERS,
        "route.routes[0].active_time_intervals",
        "days",
    )


@pytest.mark.parametrize(
    "root",
    [
        "{receiver: r, matchers: ['a=\"1\"']}",
        "{receiver: r, match: {a: '1'}}",
        "{receiver: r, match_re: {a: '1'}}",
        "{receiver: r, continue: true}",
    ],
)
def test_root_may_not_have_matchers_or_continue(root: str) -> None:
    bad(f"route: {root}\n" + BASE_RECEIVERS, "route:", "root")


def test_root_may_not_have_time_intervals() -> None:
    bad(
        "route: {receiver: r, mute_time_intervals: [w]}\n"
        + BASE_RECEIVERS
        + "time_intervals: [{name: w, time_intervals: [{weekdays: [sunday]}]}]\n",
        "route:",
        "mute_time_intervals",
    )


def test_unknown_route_field() -> None:
    bad(
        "route: {receiver: r, routes: [{reciever: s}]}\n" + BASE_RECEIVERS,
        "route.routes[0]",
        "reciever",
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("global: {resolve_timeout: soon}\nroute: {receiver: r}\n", "global.resolve_timeout"),
        ("route: {receiver: r, group_wait: 5x}\n", "route.group_wait"),
        ("route: {receiver: r, routes: [{group_interval: 1q}]}\n", "routes[0].group_interval"),
        ("route: {receiver: r, routes: [{repeat_interval: '-1h'}]}\n", "route.routes[0].repeat"),
        ("route: {receiver: r, group_interval: 0s}\n", "route.group_interval"),
    ],
)
def test_bad_durations_are_located(text: str, where: str) -> None:
    bad(text + BASE_RECEIVERS, where)


def test_duplicate_receiver() -> None:
    bad("route: {receiver: r}\nreceivers: [{name: r}, {name: r}]\n", "receivers[1]", "'r'")
    bad("route: {receiver: r}\nreceivers: [{name: r}, {url: x}]\n", "receivers[1]", "unknown field")
    bad(
        "route: {receiver: r}\nreceivers: [{name: r}, {email_configs: []}]\n",
        "receivers[1]",
        "name",
    )


def test_duplicate_and_bad_time_intervals() -> None:
    two = "[{name: w, time_intervals: []}, {name: w, time_intervals: []}]"
    bad(f"route: {{receiver: r}}\ntime_intervals: {two}\n" + BASE_RECEIVERS, "time_intervals[1]")
    bad(
        "route: {receiver: r}\nmute_time_intervals: [{name: w, time_intervals: "
        "[{weekdays: [funday]}]}]\n" + BASE_RECEIVERS,
        "mute_time_intervals[0]",
        "funday",
    )


def test_group_by_all_must_stand_alone() -> None:
    bad("route: {receiver: r, group_by: ['...', a]}\n" + BASE_RECEIVERS, "route.group_by")


def test_bad_inhibit_rule_is_located() -> None:
    bad(
        "route: {receiver: r}\ninhibit_rules: [{source_matchers: [a=1]}, "
        "{target_matchers: ['b=~\"[\"']}]\n" + BASE_RECEIVERS,
        "inhibit_rules[1].target",
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("route: [1, 2]\n" + BASE_RECEIVERS, "route"),
        ("- just\n- a list\n", "mapping"),
        ("route: {receiver: r\n", "YAML"),
        ("route: {receiver: r, routes: {a: 1}}\n" + BASE_RECEIVERS, "route.routes"),
    ],
)
def test_shape_errors(text: str, fragment: str) -> None:
    bad(text, fragment)


def test_zero_repeat_interval_is_refused() -> None:
    # Alertmanager: "repeat_interval cannot be zero" (it would repeat on every flush).
    bad("route: {receiver: r, routes: [{repeat_interval: 0s}]}\n" + BASE_RECEIVERS, "repeat")
    bad("route: {receiver: r, repeat_interval: 0}\n" + BASE_RECEIVERS, "route.repeat_interval")


def test_duplicate_group_by_label_is_refused() -> None:
    bad("route: {receiver: r, group_by: [a, b, a]}\n" + BASE_RECEIVERS, "route.group_by", "'a'")


def test_unknown_inhibit_rule_field_is_refused() -> None:
    # A misspelt side would otherwise leave it without matchers: matching every alert.
    bad(
        "route: {receiver: r}\ninhibit_rules: [{sorce_matchers: [a=1], "
        "target_matchers: [b=2]}]\n" + BASE_RECEIVERS,
        "inhibit_rules[0]",
        "sorce_matchers",
    )


def test_a_matchers_entry_may_hold_several_matchers() -> None:
    # Alertmanager parses each entry with ParseMatchers: braces optional, commas separate.
    cfg = parse_config(
        "route:\n  receiver: r\n  routes:\n"
        '    - matchers: [\'a="1", b=~"2|3"\', \'{c!="x,y"}\']\n' + BASE_RECEIVERS
    )
    assert set(cfg.route.routes[0].matchers) == {
        Matcher("a", MatchType.EQUAL, "1"),
        Matcher("b", MatchType.REGEX, "2|3"),
        Matcher("c", MatchType.NOT_EQUAL, "x,y"),
    }


def test_a_receiver_sends_resolved_if_any_integration_does_with_alertmanagers_defaults() -> None:
    cfg = parse_config(
        textwrap.dedent(
            """
            global: {smtp_smarthost: "mail.example:25", smtp_from: "am@example.com"}
            route: {receiver: hook}
            receivers:
              - name: hook
                webhook_configs: [{url: "http://h.example/x"}]
              - name: chat
                slack_configs: [{api_url: "http://h.example/s", channel: "#x"}]
              - name: mail
                email_configs: [{to: a@example.com, send_resolved: true}]
              - name: quiet
                webhook_configs: [{url: "http://h.example/x", send_resolved: false}]
                pagerduty_configs: [{routing_key: k, send_resolved: false}]
              - name: mixed
                slack_configs: [{api_url: "http://h.example/s", channel: "#x"}]
                pagerduty_configs: [{routing_key: k}]
              - name: none
            """
        )
    )
    assert {r.name: cfg.sends_resolved(r.name) for r in cfg.receivers} == {
        "hook": True,  # webhook: true by default
        "chat": False,  # slack: false by default
        "mail": True,
        "quiet": False,
        "mixed": True,  # pagerduty: true by default
        "none": True,
    }
