"""Alerts: postAlertsHandler defaults and validation, alert.Merge and the mem provider's
overlap rule, RFC 3339 printing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from alert_engine.core.alerts import (
    AlertSource,
    InvalidAlert,
    StoredAlert,
    accept,
    from_posted,
    merge,
    overlaps,
)
from alert_engine.core.validation import rfc3339
from alert_engine.testing import PostedAlert
from opsmesh.labels import common_pairs, fingerprint

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
RT = 300.0
LABELS = {"alertname": "Down", "job": "api"}


def dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def posted(
    starts: datetime | None = None,
    ends: datetime | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> PostedAlert:
    return PostedAlert(
        labels=LABELS if labels is None else labels,
        annotations=annotations or {},
        starts_at=starts,
        ends_at=ends,
        generator_url="http://prom/graph",
    )


def test_no_times_start_now_and_time_out() -> None:
    a = from_posted(posted(), now=T0, resolve_timeout_s=RT)
    assert (a.starts_at, a.ends_at, a.timeout) == (T0, T0 + RT, True)
    assert a.updated_at == T0
    assert a.fingerprint == fingerprint(LABELS)
    assert a.labels == LABELS
    assert a.source is AlertSource.API
    assert a.generator_url == "http://prom/graph"
    assert not a.resolved(T0 + RT - 1)
    assert a.resolved(T0 + RT)


def test_only_ends_at_starts_at_the_end() -> None:
    a = from_posted(posted(ends=dt(T0 - 60)), now=T0, resolve_timeout_s=RT)
    assert (a.starts_at, a.ends_at, a.timeout) == (T0 - 60, T0 - 60, False)
    assert a.resolved(T0)


def test_only_starts_at_gets_a_timeout_end() -> None:
    a = from_posted(posted(starts=dt(T0 - 600)), now=T0, resolve_timeout_s=RT)
    assert (a.starts_at, a.ends_at, a.timeout) == (T0 - 600, T0 + RT, True)


def test_both_times_are_kept_without_timeout() -> None:
    a = from_posted(posted(starts=dt(T0 - 600), ends=dt(T0 + 3600)), now=T0, resolve_timeout_s=RT)
    assert (a.starts_at, a.ends_at, a.timeout) == (T0 - 600, T0 + 3600, False)


def test_go_zero_time_means_unset() -> None:
    zero = datetime(1, 1, 1, tzinfo=UTC)
    a = from_posted(posted(starts=zero, ends=zero), now=T0, resolve_timeout_s=RT)
    assert (a.starts_at, a.ends_at, a.timeout) == (T0, T0 + RT, True)


def test_naive_and_offset_times() -> None:
    naive = datetime(2023, 11, 14, 22, 13, 20)
    a = from_posted(posted(starts=naive), now=T0 + 5, resolve_timeout_s=RT)
    assert a.starts_at == T0
    plus_two = datetime(2023, 11, 15, 0, 13, 20, tzinfo=timezone(timedelta(hours=2)))
    b = from_posted(posted(starts=plus_two), now=T0 + 5, resolve_timeout_s=RT)
    assert b.starts_at == T0


def test_ends_before_starts_is_invalid() -> None:
    with pytest.raises(InvalidAlert, match="before"):
        from_posted(posted(starts=dt(T0), ends=dt(T0 - 1)), now=T0, resolve_timeout_s=RT)
    # a start beyond the derived timeout end is invalid too, as in Alertmanager
    with pytest.raises(InvalidAlert):
        from_posted(posted(starts=dt(T0 + 2 * RT)), now=T0, resolve_timeout_s=RT)
    # equal is fine
    a = from_posted(posted(starts=dt(T0), ends=dt(T0)), now=T0, resolve_timeout_s=RT)
    assert a.starts_at == a.ends_at == T0


@pytest.mark.parametrize(
    "labels",
    [
        {},
        {"alertname": "A", "bad-name": "x"},
        {"alertname": "A", "1st": "x"},
        {"alertname": "A", "": "x"},
        {"alertname": "A", "empty": ""},
        {"alertname": "A", "long": "x" * 4097},
        {f"l{i}": "x" for i in range(65)},
    ],
)
def test_invalid_labels(labels: dict[str, str]) -> None:
    with pytest.raises(InvalidAlert):
        from_posted(posted(labels=labels), now=T0, resolve_timeout_s=RT)


def test_valid_edge_labels_and_loose_annotations() -> None:
    labels = {f"l{i}": "x" for i in range(63)} | {"alertname": "A"}
    a = from_posted(
        posted(labels=labels, annotations={"summary-text": "", "Runbook URL": "http://x"}),
        now=T0,
        resolve_timeout_s=RT,
    )
    assert len(a.labels) == 64
    assert a.annotations == {"summary-text": "", "Runbook URL": "http://x"}
    with pytest.raises(InvalidAlert):
        from_posted(
            posted(annotations={"summary": "x" * 4097}),
            now=T0,
            resolve_timeout_s=RT,
        )


def stored(
    starts: float,
    ends: float | None,
    updated: float,
    *,
    timeout: bool = False,
    annotations: dict[str, str] | None = None,
) -> StoredAlert:
    return StoredAlert(
        fingerprint(LABELS),
        LABELS,
        annotations or {},
        starts,
        ends,
        updated,
        timeout=timeout,
    )


def test_merge_keeps_the_earliest_start_and_younger_fields() -> None:
    old = stored(T0 - 600, T0 + 300, T0 - 60, annotations={"summary": "old", "gone": "1"})
    new = replace(
        stored(T0 - 60, T0 + 360, T0, annotations={"summary": "new"}),
        generator_url="http://new",
    )
    merged = merge(old, new, now=T0)
    assert merged.starts_at == T0 - 600
    assert merged.annotations == {"summary": "new"}  # replaced, not merged key by key
    assert merged.generator_url == "http://new"
    assert merged.updated_at == T0
    assert merged.ends_at == T0 + 360


def test_merge_is_by_age_not_argument_order() -> None:
    older = stored(T0 - 600, T0 + 300, T0 - 60, annotations={"summary": "old"})
    younger = stored(T0 - 60, T0 + 360, T0, annotations={"summary": "new"})
    assert merge(younger, older, now=T0) == merge(older, younger, now=T0)


def test_latest_explicit_resolve_wins_when_both_resolved() -> None:
    older = stored(T0 - 600, T0 - 10, T0 - 60)
    younger = stored(T0 - 600, T0 - 100, T0)
    assert merge(older, younger, now=T0).ends_at == T0 - 10
    later_young = stored(T0 - 600, T0 - 5, T0)
    assert merge(older, later_young, now=T0).ends_at == T0 - 5


def test_a_younger_resolve_resolves_a_firing_alert() -> None:
    firing = stored(T0 - 600, T0 + 3600, T0 - 60)
    resolve = stored(T0 - 600, T0 - 1, T0)
    merged = merge(firing, resolve, now=T0)
    assert merged.ends_at == T0 - 1
    assert merged.resolved(T0)


def test_a_later_explicit_end_beats_a_younger_firing_end() -> None:
    older = stored(T0 - 600, T0 + 3600, T0 - 60, timeout=False)
    younger = stored(T0 - 600, T0 + 300, T0, timeout=True)
    merged = merge(older, younger, now=T0)
    assert merged.ends_at == T0 + 3600
    assert not merged.resolved(T0 + 301)


def test_a_later_timeout_end_does_not_beat_a_younger_end() -> None:
    older = stored(T0 - 600, T0 + 3600, T0 - 60, timeout=True)
    younger = stored(T0 - 600, T0 + 300, T0, timeout=False)
    assert merge(older, younger, now=T0).ends_at == T0 + 300


def test_an_open_ended_old_alert_keeps_its_end_unless_timeout() -> None:
    rule_alert = stored(T0 - 600, None, T0 - 60)
    pushed = stored(T0 - 60, T0 + 300, T0, timeout=True)
    assert merge(rule_alert, pushed, now=T0).ends_at is None


def test_overlaps_follows_the_mem_provider() -> None:
    old = stored(T0 - 600, T0 + 300, T0 - 60)
    assert overlaps(old, stored(T0 - 60, T0 + 360, T0))  # starts inside
    assert overlaps(old, stored(T0 - 900, T0, T0))  # ends inside
    assert not overlaps(old, stored(T0 + 400, T0 + 700, T0))  # after
    assert not overlaps(old, stored(T0 - 900, T0 - 700, T0))  # before
    # touching the old start or end is not overlapping (strict, as After/Before)
    assert not overlaps(old, stored(T0 - 600, T0 + 600, T0))
    assert not overlaps(old, stored(T0 + 300, T0 + 600, T0))


def test_accept_merges_overlapping_and_replaces_the_rest() -> None:
    new = stored(T0 - 60, T0 + 360, T0, annotations={"v": "2"})
    assert accept(None, new, now=T0) is new
    old = stored(T0 - 600, T0 + 300, T0 - 60, annotations={"v": "1"})
    merged = accept(old, new, now=T0)
    assert merged.starts_at == T0 - 600
    assert merged.annotations == {"v": "2"}
    # a new occurrence after the old one resolved: replaced, the old start forgotten
    resolved_old = stored(T0 - 600, T0 - 300, T0 - 290)
    again = stored(T0 - 60, T0 + 240, T0, timeout=True)
    assert accept(resolved_old, again, now=T0) == again


def test_rfc3339() -> None:
    assert rfc3339(T0) == "2023-11-14T22:13:20.000Z"
    assert rfc3339(T0 + 0.25) == "2023-11-14T22:13:20.250Z"
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(None) == "0001-01-01T00:00:00.000Z"
    assert rfc3339(float("inf")) == "0001-01-01T00:00:00.000Z"


def test_common_labels() -> None:
    assert common_pairs([]) == {}
    assert common_pairs([{"a": "1", "b": "2"}, {"a": "1", "b": "3"}, {"a": "1"}]) == {"a": "1"}
    assert common_pairs([{"a": "1"}]) == {"a": "1"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # issue 10 item 2: year 9999 locally is year 10000 in UTC
        (
            {"ends": datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(minutes=1439)))},
            r"^endsAt: 9999-12-31T23:59:59-23:59 is outside the accepted range",
        ),
        ({"starts": datetime(1969, 7, 20, tzinfo=UTC)}, r"^startsAt: 1969-07-20"),
        ({"labels": {"alertname": "A", "team": "db\x00"}}, r"^labels\.team: contains a NUL"),
        ({"labels": {"alertname": "A", "v": "x" * 1025}}, r"^labels\.v: is longer than 1024"),
        ({"annotations": {"summary": "\ud800"}}, r"^annotations\.summary: contains a lone"),
    ],
)
def test_unstorable_and_out_of_range_alerts_are_invalid(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidAlert, match=message):
        from_posted(posted(**changes), now=T0, resolve_timeout_s=RT)  # type: ignore[arg-type]


def test_generator_url_must_be_storable() -> None:
    alert = PostedAlert(LABELS, {}, None, None, "http://prom/\x00")
    with pytest.raises(InvalidAlert, match=r"^generatorURL: contains a NUL"):
        from_posted(alert, now=T0, resolve_timeout_s=RT)


def test_the_last_accepted_moment_prints() -> None:
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    a = from_posted(posted(ends=last), now=T0, resolve_timeout_s=RT)
    assert rfc3339(a.ends_at).startswith("9999-12-31T23:59:59.99")
