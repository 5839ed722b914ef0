"""The routing tree: Alertmanager's ``Route.Match`` walk and group keys."""

from __future__ import annotations

from typing import Any

import pytest

from alert_engine.core.matchers import parse_matchers
from alert_engine.core.routing import MAX_GROUP_KEY, Route, child_key, format_label_set


def node(receiver: str, matchers: str, parent_key: str = "{}", **kw: Any) -> Route:
    ms = tuple(parse_matchers(matchers))
    return Route(receiver, matchers=ms, key=child_key(parent_key, ms), **kw)


def receivers(route: Route, **labels: str) -> list[str]:
    return [r.receiver for r in route.match(labels)]


def test_root_takes_what_no_child_takes() -> None:
    root = Route("root", routes=(node("db", '{team="db"}'),))
    assert receivers(root, team="web") == ["root"]
    assert receivers(root) == ["root"]
    assert root.match({"team": "web"})[0] is root


def test_first_matching_child_wins() -> None:
    root = Route(
        "root",
        routes=(
            node("first", '{severity="page"}'),
            node("second", '{severity=~"page|ticket"}'),
            node("third", '{team="db"}'),
        ),
    )
    assert receivers(root, severity="page", team="db") == ["first"]
    assert receivers(root, severity="ticket", team="db") == ["second"]
    assert receivers(root, team="db") == ["third"]


def test_continue_keeps_trying_later_siblings() -> None:
    root = Route(
        "root",
        routes=(
            node("audit", '{env="prod"}', continue_matching=True),
            node("page", '{severity="page"}'),
            node("never", '{env="prod"}'),
        ),
    )
    # audit continues; page stops the walk before "never"
    assert receivers(root, env="prod", severity="page") == ["audit", "page"]
    # audit continues; page does not match; "never" matches and stops
    assert receivers(root, env="prod") == ["audit", "never"]
    # a continuing route that does not match changes nothing
    assert receivers(root, severity="page") == ["page"]


def test_a_match_only_from_a_continue_route_does_not_fall_back_to_the_parent() -> None:
    root = Route("root", routes=(node("audit", '{env="prod"}', continue_matching=True),))
    assert receivers(root, env="prod") == ["audit"]


def test_nested_trees_descend_and_fall_back_to_the_deepest_match() -> None:
    db_key = child_key("{}", parse_matchers('{team="db"}'))
    db = node(
        "db",
        '{team="db"}',
        routes=(
            node("db-page", '{severity="page"}', db_key),
            node("db-mysql", '{service=~"mysql.*"}', db_key),
        ),
    )
    root = Route("root", routes=(db, node("web", '{team="web"}')))
    assert receivers(root, team="db", severity="page", service="mysql") == ["db-page"]
    assert receivers(root, team="db", service="mysql-replica") == ["db-mysql"]
    assert receivers(root, team="db", service="postgres") == ["db"]  # no child: the node
    assert receivers(root, team="web", severity="page") == ["web"]
    # a non-matching node does not hand its children anything
    assert receivers(root, severity="page", service="mysql") == ["root"]
    assert db.routes[0].key == '{}/{team="db"}/{severity="page"}'


def test_a_node_whose_matchers_fail_matches_nothing() -> None:
    assert node("x", '{a="1"}').match({"a": "2"}) == []


def test_group_key_format() -> None:
    root = Route("root", group_by=("b", "a"))
    assert root.group_key({"a": "1", "b": "2", "c": "3"}) == '{}:{a="1", b="2"}'
    # labels missing from the alert are left out of the group labels
    assert root.group_key({"a": "1"}) == '{}:{a="1"}'
    assert Route("root", group_by=()).group_key({"a": "1"}) == "{}:{}"


def test_child_route_group_key() -> None:
    child = node("pager", '{severity="page"}', group_by=("alertname",))
    assert child.key == '{}/{severity="page"}'
    assert child.group_key({"alertname": "Down", "severity": "page"}) == (
        '{}/{severity="page"}:{alertname="Down"}'
    )
    two = node("x", '{a="1", b=~"2|3"}')
    assert two.key == '{}/{a="1",b=~"2|3"}'


def test_group_labels_are_quoted_so_values_cannot_collide() -> None:
    route = Route("root", group_by=("a", "b"))
    tricky = route.group_key({"a": '1", b="2'})
    plain = route.group_key({"a": "1", "b": "2"})
    assert tricky != plain
    assert format_label_set({"a": 'x"y'}) == '{a="x\\"y"}'


def test_group_by_all_labels() -> None:
    route = Route("root", group_by=("...",))
    assert route.groups_by_all
    labels = {"z": "1", "alertname": "A", "host": "h"}
    assert route.group_labels(labels) == labels
    assert route.group_key(labels) == '{}:{alertname="A", host="h", z="1"}'
    assert route.group_key({"alertname": "A"}) != route.group_key({"alertname": "A", "h": "x"})
    assert not Route("root").groups_by_all


def test_repeat_interval_is_rounded_up_to_a_multiple_of_group_interval() -> None:
    assert Route("r", group_interval_s=300, repeat_interval_s=301).repeat_interval_s == 600
    assert Route("r", group_interval_s=300, repeat_interval_s=600).repeat_interval_s == 600
    assert Route("r", group_interval_s=300, repeat_interval_s=60).repeat_interval_s == 300
    with pytest.raises(ValueError, match="group_interval"):
        Route("r", group_interval_s=0)


def test_walk_is_depth_first_in_order() -> None:
    inner = node("b1", '{b="1"}')
    root = Route("root", routes=(node("a", '{a="1"}', routes=(inner,)), node("c", '{c="1"}')))
    assert [r.receiver for r in root.walk()] == ["root", "a", "b1", "c"]


def test_group_keys_are_bounded_to_what_the_events_carry() -> None:
    route = Route(receiver="r", group_by=("...",))
    labels = {f"l{i}": "v" * 1000 for i in range(40)}
    key = route.group_key(labels)
    assert len(key) <= MAX_GROUP_KEY
    assert key.startswith('{}:{l0="vvv')
    other = route.group_key({**labels, "l39": "w" * 1000})
    assert other != key, "different groups keep different keys"
    assert len(other) <= MAX_GROUP_KEY
    small = {"alertname": "A"}
    assert route.group_key(small) == '{}:{alertname="A"}', "short keys are unchanged"
