"""The slow-route signal from profiles: per-route windows of profiled durations on a fake
clock, closed after their grace into ``route_profiled_duration`` signals that conform to
the catalogue; late and overflowing profiles counted, not signalled."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from opsmesh import catalogue
from opsmesh.events.profiles import ProfiledFunction, ProfileRecorded
from opsmesh_dev.testing.clock import FakeClock
from query_analyzer.core.slow_routes import RouteWindows, SlowRouteRules, slow_route_signal
from query_analyzer.pipeline.profile_stage import ProfileStage
from query_analyzer.pipeline.signals import MemorySignalSink

T0 = 1_760_000_000.0  # a multiple of 10: window starts are T0 + 10 k
RULES = SlowRouteRules(window_s=10.0, grace_s=2.0)


def profile(route: str, duration_ms: float, at: float, *, service: str = "shop") -> ProfileRecorded:
    return ProfileRecorded(
        service=service,
        instance="web-1",
        route=route,
        method="GET",
        status=200,
        reason="slow" if duration_ms >= 500 else "sampled",
        duration_ms=duration_ms,
        interval_ms=10.0,
        samples=1,
        functions=[
            ProfiledFunction(
                function="view", file="shop.py", line=1, self_samples=1, total_samples=1
            )
        ],
        started_at=at,
    )


def test_a_window_closes_after_its_grace_into_one_signal_per_route() -> None:
    windows = RouteWindows(RULES)
    for i, ms in enumerate([100.0, 200.0, 900.0, 1200.0]):
        windows.add(profile("/checkout", ms, T0 + i), now=T0 + 5)
    windows.add(profile("/home", 50.0, T0 + 1), now=T0 + 5)
    windows.add(profile("/checkout", 30.0, T0 + 10.5), now=T0 + 11)  # the next window

    assert windows.closed(now=T0 + 11.9) == []  # ended at T0 + 10, grace 2 s
    closed = windows.closed(now=T0 + 12.0)
    assert [(w.route, w.start, w.end) for w in closed] == [
        ("/checkout", T0, T0 + 10),
        ("/home", T0, T0 + 10),
    ]
    signal = slow_route_signal(closed[0], observed_at=T0 + 12)
    assert catalogue.problems(signal) == []
    assert signal.name == "route_profiled_duration"
    assert signal.labels == {"service": "shop", "route": "/checkout"}
    assert signal.value == 1200.0  # nearest rank: the 4th of 4
    assert signal.stats == {"count": 4.0, "slow": 2.0, "mean_ms": 600.0, "max_ms": 1200.0}
    assert (signal.window_start, signal.window_end) == (T0, T0 + 10)
    assert len(windows) == 1  # /checkout's next window is still open


def test_p95_is_the_nearest_rank_of_the_window() -> None:
    windows = RouteWindows(RULES)
    for ms in range(1, 101):  # 1 .. 100 ms
        windows.add(profile("/r", float(ms), T0 + 1), now=T0 + 1)
    (window,) = windows.closed(now=T0 + 20)
    assert window.p95_ms() == 95.0


def test_late_profiles_and_future_stamps() -> None:
    windows = RouteWindows(RULES)
    windows.add(profile("/r", 10.0, T0 + 1), now=T0 + 1)
    assert len(windows.closed(now=T0 + 12)) == 1
    windows.add(profile("/r", 10.0, T0 + 9), now=T0 + 12)  # its window has closed
    assert windows.late == 1
    assert len(windows) == 0
    # A producer clock an hour ahead: counted in the window of now, not held open.
    windows.add(profile("/r", 10.0, T0 + 3600), now=T0 + 13)
    (window,) = windows.closed(now=T0 + 22)
    assert window.start == T0 + 10


def test_windows_are_bounded() -> None:
    windows = RouteWindows(SlowRouteRules(window_s=10.0, grace_s=0.0, max_open=2, max_kept=10))
    for route in ("/a", "/b", "/c"):
        windows.add(profile(route, 10.0, T0), now=T0)
    assert (len(windows), windows.dropped) == (2, 1)
    for i in range(1000):
        windows.add(profile("/a", float(i), T0), now=T0)
    a = next(w for w in windows.closed(now=T0 + 10) if w.route == "/a")
    assert len(a.kept) == 10
    assert (a.count, a.max_ms) == (1001, 999.0)  # exact beyond the reservoir


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window_s"):
        RouteWindows(SlowRouteRules(window_s=0))


class FailingSink(MemorySignalSink):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    async def publish(self, signals: Any, traces: Any = ()) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        await super().publish(signals, traces)


async def test_the_stage_publishes_closed_windows_on_quiet_calls_and_retries_them() -> None:
    clock = FakeClock(T0 + 1)
    windows = RouteWindows(RULES)
    windows.add(profile("/checkout", 700.0, T0 + 1), now=clock.now())
    sink = FailingSink()
    unused: Any = None  # an empty batch touches no storage
    stage = ProfileStage(
        pool=unused,
        profiles=unused,
        consumer="unit",
        registry=CollectorRegistry(),
        signals=sink,
        clock=clock,
        windows=windows,
    )
    await stage.handle([])
    assert len(windows) == 1  # not closed yet
    clock.advance(11.0)
    with pytest.raises(ConnectionError):
        await stage.handle([])
    assert len(windows) == 1, "a window whose signal failed is put back"
    sink.fail = False
    await stage.handle([])
    (signal,) = sink.published
    assert (signal.labels["route"], signal.value) == ("/checkout", 700.0)
    assert len(windows) == 0
