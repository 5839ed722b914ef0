"""Request profiles folded per route and per function: the pure part of the profile
stage. A batch of ``ProfileRecorded`` becomes one row per (service, route) and one per
(service, route, function), summed, in a fixed order (rows are locked in that order, so
two writers cannot deadlock)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from opsmesh.events.profiles import ProfileRecorded

RouteKey = tuple[str, str]
FunctionKey = tuple[str, str, str, str, int]


def storable(text: str) -> str:
    """PostgreSQL text holds neither NUL nor unpaired surrogates: a hostile or broken
    producer's name is stored mended, not allowed to fail its whole batch."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


@dataclass(slots=True)
class RouteTotals:
    service: str
    route: str
    profiles: int = 0
    slow_profiles: int = 0
    samples: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    slowest_trace_id: str | None = None  # the trace of the batch's slowest profile
    last_seen: float = 0.0
    memory_profiles: int = 0  # those that carried memory figures (SDK's profile_memory)
    memory_peak_total: float = 0.0
    memory_peak_max: float = 0.0
    memory_net_total: float = 0.0


@dataclass(slots=True)
class FunctionTotals:
    service: str
    route: str
    function: str
    file: str
    line: int
    profiles: int = 0
    self_samples: int = 0
    total_samples: int = 0
    last_seen: float = 0.0


def fold(events: Iterable[ProfileRecorded]) -> tuple[list[RouteTotals], list[FunctionTotals]]:
    routes: dict[RouteKey, RouteTotals] = {}
    functions: dict[FunctionKey, FunctionTotals] = {}
    for event in events:
        service, route = storable(event.service), storable(event.route)
        totals = routes.get((service, route))
        if totals is None:
            totals = routes[(service, route)] = RouteTotals(service, route)
        totals.profiles += 1
        totals.slow_profiles += event.reason == "slow"
        totals.samples += event.samples
        totals.total_ms += event.duration_ms
        if event.duration_ms >= totals.max_ms:
            totals.max_ms = event.duration_ms
            totals.slowest_trace_id = event.trace_id and storable(event.trace_id)
        totals.last_seen = max(totals.last_seen, event.started_at)
        if event.memory_peak_bytes is not None and event.memory_net_bytes is not None:
            totals.memory_profiles += 1
            totals.memory_peak_total += event.memory_peak_bytes
            totals.memory_peak_max = max(totals.memory_peak_max, event.memory_peak_bytes)
            totals.memory_net_total += event.memory_net_bytes
        for f in event.functions:
            key = (service, route, storable(f.function), storable(f.file), f.line)
            row = functions.get(key)
            if row is None:
                row = functions[key] = FunctionTotals(*key)
            row.profiles += 1
            row.self_samples += f.self_samples
            row.total_samples += f.total_samples
            row.last_seen = max(row.last_seen, event.started_at)
    return (
        [routes[k] for k in sorted(routes)],
        [functions[k] for k in sorted(functions)],
    )
