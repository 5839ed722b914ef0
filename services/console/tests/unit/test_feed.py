"""The alert feed: a read that differs is decoded and announced, one that does not is
not, a failed read keeps the last groups and says why, and waiters wake on a change."""

from __future__ import annotations

import asyncio

import pytest

from console.pipeline.feed import AlertFeed
from console.testing import FakeGroupsSource
from console.upstream import UpstreamError
from opsmesh_dev.testing.clock import FakeClock


def group(alertname: str) -> dict[str, object]:
    return {
        "labels": {"alertname": alertname},
        "routeLabels": {},
        "receiver": {"name": "default"},
        "alerts": [
            {
                "labels": {"alertname": alertname},
                "annotations": {},
                "fingerprint": f"fp-{alertname}",
                "startsAt": "2026-12-06T05:00:00Z",
                "updatedAt": "2026-12-06T05:00:00Z",
                "endsAt": "2026-12-06T06:00:00Z",
                "generatorURL": "",
                "receivers": [{"name": "default"}],
                "status": {"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []},
            }
        ],
    }


async def test_a_changed_read_is_decoded_and_announced_an_unchanged_one_is_not() -> None:
    source, clock = FakeGroupsSource(), FakeClock(100.0)
    feed = AlertFeed(source, clock)
    source.set_groups([group("A")])
    await feed.refresh()
    assert [g.alerts[0].fingerprint for g in feed.groups] == ["fp-A"]
    assert (feed.version, feed.read_at) == (1, 100.0)
    clock.advance(2)
    await feed.refresh()
    assert (feed.version, feed.read_at) == (1, 102.0)
    await feed.ready()


async def test_a_failed_read_keeps_the_last_groups_and_says_why() -> None:
    source = FakeGroupsSource()
    feed = AlertFeed(source, FakeClock())
    with pytest.raises(RuntimeError, match="not been read"):
        await feed.ready()
    source.set_groups([group("A")])
    await feed.refresh()
    source.down = True
    with pytest.raises(UpstreamError):
        await feed.refresh()
    assert [g.labels for g in feed.groups] == [{"alertname": "A"}]
    assert feed.error is not None
    with pytest.raises(UpstreamError):
        await feed.ready()
    source.down = False
    await feed.refresh()
    assert feed.error is None


async def test_waiters_wake_on_a_change_and_time_out_without_one() -> None:
    source = FakeGroupsSource()
    feed = AlertFeed(source, FakeClock())
    await feed.refresh()
    assert await feed.changed(feed.version, timeout_s=0.01) == feed.version
    waiting = asyncio.create_task(feed.changed(feed.version, timeout_s=30))
    await asyncio.sleep(0)  # let the waiter start waiting (an ordering, not a delay)
    source.set_groups([group("B")])
    await feed.refresh()
    assert await asyncio.wait_for(waiting, timeout=5) == 2


async def test_an_alert_turning_pending_is_a_change_and_its_read_is_kept() -> None:
    source = FakeGroupsSource()
    feed = AlertFeed(source, FakeClock())
    source.set_groups([group("A")])
    await feed.refresh()
    assert (feed.version, feed.pending) == (1, [])
    source.set_pending(
        [
            {
                "fingerprint": "fp-p",
                "rule": "DiskFilling",
                "state": "pending",
                "labels": {"alertname": "DiskFilling"},
                "value": 0.93,
                "active_at": 1_800_000_000.0,
            }
        ]
    )
    await feed.refresh()
    assert feed.version == 2
    assert [(p.fingerprint, p.rule, p.active_at) for p in feed.pending] == [
        ("fp-p", "DiskFilling", 1_800_000_000.0)
    ]
    assert [g.labels for g in feed.groups] == [{"alertname": "A"}]  # the groups kept
    await feed.refresh()
    assert feed.version == 2
