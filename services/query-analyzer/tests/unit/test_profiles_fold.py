"""Profiles folded per route and function: sums, the slowest trace, a fixed row order and
names PostgreSQL can store."""

from __future__ import annotations

import msgspec

from opsmesh.events.profiles import ProfiledFunction, ProfileRecorded
from query_analyzer.core.profiles import fold

T0 = 1_760_000_000.0


def profile(
    route: str, duration_ms: float, *, trace: str, functions: list[ProfiledFunction]
) -> ProfileRecorded:
    return ProfileRecorded(
        service="shop",
        instance="web-1",
        route=route,
        method="GET",
        status=200,
        reason="slow" if duration_ms >= 500 else "sampled",
        duration_ms=duration_ms,
        interval_ms=10.0,
        samples=sum(f.self_samples for f in functions),
        functions=functions,
        trace_id=trace,
        started_at=T0 + duration_ms,
    )


def fn(name: str, own: int, total: int) -> ProfiledFunction:
    return ProfiledFunction(
        function=name, file="shop/views.py", line=1, self_samples=own, total_samples=total
    )


def test_a_batch_sums_per_route_and_function() -> None:
    routes, functions = fold(
        [
            profile(
                "/orders", 800, trace="t1", functions=[fn("render", 70, 80), fn("view", 10, 80)]
            ),
            profile(
                "/orders", 600, trace="t2", functions=[fn("render", 50, 60), fn("view", 10, 60)]
            ),
            profile("/cart", 40, trace="t3", functions=[fn("view", 4, 4)]),
        ]
    )
    assert [(r.route, r.profiles, r.slow_profiles) for r in routes] == [
        ("/cart", 1, 0),
        ("/orders", 2, 2),
    ]
    orders = routes[1]
    assert orders.total_ms == 1400
    assert orders.max_ms == 800
    assert orders.slowest_trace_id == "t1"
    assert orders.samples == 140
    assert orders.last_seen == T0 + 800
    by_key = {
        (f.route, f.function): (f.profiles, f.self_samples, f.total_samples) for f in functions
    }
    assert by_key[("/orders", "render")] == (2, 120, 140)
    assert by_key[("/orders", "view")] == (2, 20, 140)
    assert by_key[("/cart", "view")] == (1, 4, 4)
    keys = [(f.service, f.route, f.function, f.file, f.line) for f in functions]
    assert keys == sorted(keys)  # rows locked in one order by every writer


def test_names_postgresql_cannot_store_are_mended() -> None:
    routes, functions = fold(
        [profile("/a\x00b", 10, trace="t", functions=[fn("bad\ud800name", 1, 1)])]
    )
    assert routes[0].route == "/ab"
    assert functions[0].function == "bad?name"


def test_memory_is_summed_over_the_profiles_that_carry_it() -> None:
    """The SDK's profile_memory is per application: profiles without figures (older SDKs,
    the setting off) are not counted as zero bytes."""
    measured = [
        msgspec.structs.replace(
            profile("/orders", 800, trace=f"t{i}", functions=[fn("view", 1, 1)]),
            memory_peak_bytes=peak,
            memory_net_bytes=net,
        )
        for i, (peak, net) in enumerate([(4_000_000, 1_000), (2_000_000, -500)])
    ]
    unmeasured = profile("/orders", 700, trace="t9", functions=[fn("view", 1, 1)])
    (orders,), _ = fold([*measured, unmeasured])
    assert orders.profiles == 3
    assert orders.memory_profiles == 2
    assert orders.memory_peak_total == 6_000_000
    assert orders.memory_peak_max == 4_000_000
    assert orders.memory_net_total == 500
    (cart,), _ = fold([profile("/cart", 40, trace="t", functions=[fn("view", 1, 1)])])
    assert (cart.memory_profiles, cart.memory_peak_max) == (0, 0.0)
