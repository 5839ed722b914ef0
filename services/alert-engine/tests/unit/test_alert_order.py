"""Alerts are listed in Alertmanager's order (alert.AlertSlice.Less)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from alert_engine.core.alert_order import alertmanager_order, label_set_before, sort_key

names = st.sampled_from(["alertname", "job", "instance", "a", "ab", "abc", "b", "zone", "é"])
values = st.text(alphabet="abcAB0é-", max_size=3)
label_sets = st.dictionaries(names, values, max_size=5)


def compare_alerts(a: Mapping[str, str], b: Mapping[str, str]) -> int:
    """-1, 0 or 1 as ``AlertSlice.Less`` orders two alerts' label sets: the pairwise rule,
    transcribed, that ``sort_key`` must agree with."""
    for key in ("job", "instance"):
        in_a, in_b = key in a, key in b
        if not in_a and not in_b:
            continue
        if not in_a:
            return 1
        if not in_b:
            return -1
        if a[key] != b[key]:
            return -1 if a[key] < b[key] else 1
    if label_set_before(a, b):
        return -1
    if label_set_before(b, a):
        return 1
    return 0


def test_job_then_instance_then_label_sets() -> None:
    alerts = [
        {"alertname": "A", "x": "1"},  # neither job nor instance: last
        {"alertname": "A", "instance": "b"},
        {"alertname": "A", "job": "z"},
        {"alertname": "A", "job": "a", "instance": "2"},
        {"alertname": "A", "job": "a", "instance": "1"},
        {"alertname": "A", "job": "a"},  # has job "a", lacks instance: after those that have it
        {"alertname": "A"},  # fewer labels than the first: before it
    ]
    ordered = alertmanager_order(alerts, lambda a: a)
    assert ordered == [
        {"alertname": "A", "job": "a", "instance": "1"},
        {"alertname": "A", "job": "a", "instance": "2"},
        {"alertname": "A", "job": "a"},
        {"alertname": "A", "job": "z"},
        {"alertname": "A", "instance": "b"},
        {"alertname": "A"},
        {"alertname": "A", "x": "1"},
    ]


def test_same_size_sets_compare_on_the_first_differing_name() -> None:
    # Union of names sorted: a, b, c. The second lacks "a", the first differing name:
    # a set lacking it is before (model.LabelSet.Before).
    first, second = {"a": "9", "c": "1"}, {"b": "1", "c": "1"}
    assert compare_alerts(second, first) == -1
    assert alertmanager_order([first, second], lambda a: a) == [second, first]
    prefix, longer = {"ab": "1"}, {"abc": "1"}  # the first lacks "abc"... and the second "ab"
    assert compare_alerts(longer, prefix) == -1  # "ab" comes first in the union
    assert alertmanager_order([prefix, longer], lambda a: a) == [longer, prefix]


@given(st.lists(label_sets, max_size=8))
def test_the_sort_key_orders_exactly_as_the_pairwise_rule(sets: list[dict[str, str]]) -> None:
    by_rule = sorted(sets, key=functools.cmp_to_key(compare_alerts))
    by_key = sorted(sets, key=sort_key)
    assert [sort_key(s) for s in by_rule] == [sort_key(s) for s in by_key]
    for x, y in itertools.pairwise(by_key):
        assert compare_alerts(x, y) <= 0
