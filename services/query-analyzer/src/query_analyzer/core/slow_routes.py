"""Per-route windows of profiled request durations: the slow-route signal's pure core.

Each ``ProfileRecorded`` goes into the window of its route (service, route) that its
``started_at`` falls in (aligned to ``window_s``; a stamp ahead of the clock counts as
now, so a skewed producer cannot hold a window open). A window closes once the clock is
``grace_s`` past its end; a closed window becomes one ``route_profiled_duration`` signal:
the p95 (nearest rank) of its profiled requests' durations, with their count, slow count,
mean and max. A profile for a window already closed is late: counted, left out.

What is profiled is every request at least the application's slow threshold plus a
sample of the others, so the p95 reads "how slow this route's slow requests are", not
the route's latency over all requests (``http_request_duration_seconds`` is that).

Bounded: at most ``max_open`` windows open (further routes are dropped and counted until
windows close), and at most ``max_kept`` durations per window for its p95 (a reservoir
sample beyond that; count, mean and max stay exact). Windows live in memory: a restart
loses the open ones (a signal missed at worst, never a false one).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from opsmesh.catalogue import ROUTE_PROFILED_DURATION
from opsmesh.events.profiles import ProfileRecorded
from opsmesh.events.signals import SignalObserved
from query_analyzer.core.profiles import storable

WindowKey = tuple[str, str, float]  # service, route, window start


@dataclass(slots=True)
class RouteWindow:
    service: str
    route: str
    start: float
    end: float
    count: int = 0
    slow: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    kept: list[float] = field(default_factory=list)

    def p95_ms(self) -> float:
        ranked = sorted(self.kept)
        return ranked[max(0, math.ceil(0.95 * len(ranked)) - 1)]


@dataclass(frozen=True, slots=True)
class SlowRouteRules:
    window_s: float = 60.0
    grace_s: float = 10.0  # how long after a window's end its late profiles still count
    max_open: int = 10_000
    max_kept: int = 1_000


class RouteWindows:
    def __init__(self, rules: SlowRouteRules | None = None, *, seed: int = 0) -> None:
        self.rules = rules or SlowRouteRules()
        if self.rules.window_s <= 0 or self.rules.max_kept < 1:
            raise ValueError("window_s must be positive and max_kept at least 1")
        self._open: dict[WindowKey, RouteWindow] = {}
        self._closed_before = 0.0  # windows starting before this have closed
        self._random = random.Random(seed)  # noqa: S311 - a reservoir's draws, not secrets
        self.late = 0  # profiles for windows already closed
        self.dropped = 0  # profiles of routes that found no window (max_open)

    def __len__(self) -> int:
        return len(self._open)

    def add(self, event: ProfileRecorded, now: float) -> None:
        at = min(event.started_at, now)
        window_s = self.rules.window_s
        start = at - at % window_s
        if start < self._closed_before:
            self.late += 1
            return
        key = (storable(event.service), storable(event.route), start)
        window = self._open.get(key)
        if window is None:
            if len(self._open) >= self.rules.max_open:
                self.dropped += 1
                return
            window = self._open[key] = RouteWindow(key[0], key[1], start, start + window_s)
        window.count += 1
        window.slow += event.reason == "slow"
        window.total_ms += event.duration_ms
        window.max_ms = max(window.max_ms, event.duration_ms)
        if len(window.kept) < self.rules.max_kept:
            window.kept.append(event.duration_ms)
        else:  # reservoir sampling (Algorithm R): every duration kept with equal chance
            slot = self._random.randrange(window.count)
            if slot < self.rules.max_kept:
                window.kept[slot] = event.duration_ms

    def closed(self, now: float) -> list[RouteWindow]:
        """The windows whose end is at least ``grace_s`` past, oldest first; removed."""
        horizon = now - self.rules.grace_s
        done = [w for w in self._open.values() if w.end <= horizon]
        for window in done:
            del self._open[(window.service, window.route, window.start)]
        # Aligned starts below this have ended by the horizon: a profile for one is late.
        self._closed_before = max(self._closed_before, horizon - horizon % self.rules.window_s)
        done.sort(key=lambda w: (w.start, w.service, w.route))
        return done

    def restore(self, windows: list[RouteWindow]) -> None:
        """Put back windows ``closed`` returned whose signals could not be published."""
        for window in windows:
            self._open.setdefault((window.service, window.route, window.start), window)


def route_signal_id(service: str, route: str) -> str:
    return f"route:{service}:{route}"


def slow_route_signal(window: RouteWindow, *, observed_at: float) -> SignalObserved:
    p95 = window.p95_ms()
    return ROUTE_PROFILED_DURATION.observe(
        subject=route_signal_id(window.service, window.route),
        labels={"service": window.service, "route": window.route},
        value=p95,
        stats={
            "count": float(window.count),
            "slow": float(window.slow),
            "mean_ms": window.total_ms / window.count,
            "max_ms": window.max_ms,
        },
        window_start=window.start,
        window_end=window.end,
        observed_at=observed_at,
        detail=(
            f"{window.count} profiled requests ({window.slow} slow): p95 {p95:.0f} ms,"
            f" max {window.max_ms:.0f} ms"
        ),
    )
