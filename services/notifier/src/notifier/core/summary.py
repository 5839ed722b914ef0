"""The daily alert summary: what opened, what resolved, the noisiest rules, and how long
alerts took to resolve. Pure: built from alert state transitions."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Transition:
    fingerprint: str
    rule: str
    previous: str
    state: str
    at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule: str
    opened: int


@dataclass(frozen=True, slots=True)
class Summary:
    start: float
    end: float
    opened: int
    resolved: int
    still_firing: int
    noisiest: tuple[RuleCount, ...]
    median_resolve_s: float | None
    p90_resolve_s: float | None
    max_resolve_s: float | None


def summarise(
    transitions: Iterable[Transition],
    *,
    start: float,
    end: float,
    firing_before: Iterable[tuple[str, float]] = (),
    top: int = 5,
) -> Summary:
    """``transitions`` in time order within [start, end); ``firing_before`` gives alerts
    that were already firing at ``start`` (fingerprint, since), so a resolve today of an
    alert opened yesterday still has a time to resolve."""
    firing_since: dict[str, float] = dict(firing_before)
    opened_by_rule: Counter[str] = Counter()
    durations: list[float] = []
    opened = resolved = 0
    for t in transitions:
        if t.state == "firing" and t.previous != "firing":
            opened += 1
            opened_by_rule[t.rule] += 1
            firing_since[t.fingerprint] = t.at
        elif t.state in ("resolved", "inactive") and t.previous == "firing":
            resolved += 1
            since = firing_since.pop(t.fingerprint, None)
            if since is not None:
                durations.append(max(0.0, t.at - since))
    durations.sort()
    return Summary(
        start=start,
        end=end,
        opened=opened,
        resolved=resolved,
        still_firing=len(firing_since),
        noisiest=tuple(
            RuleCount(rule, count)
            for rule, count in sorted(opened_by_rule.items(), key=lambda rc: (-rc[1], rc[0]))[:top]
        ),
        median_resolve_s=statistics.median(durations) if durations else None,
        p90_resolve_s=durations[min(len(durations) - 1, int(len(durations) * 0.9))]
        if durations
        else None,
        max_resolve_s=durations[-1] if durations else None,
    )


def next_run(now: float, hour_utc: int) -> float:
    """The next ``hour_utc``:00 UTC strictly after ``now``."""
    day = 86_400.0
    today = now - (now % day)
    candidate = today + hour_utc * 3600
    return candidate if candidate > now else candidate + day
