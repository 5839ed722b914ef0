"""Routing by region with failover, the health poller's state keeping, and
purge_everywhere's bounded retries: pure logic with fakes and injected clocks."""

from __future__ import annotations

import json
import logging
import random

import pytest

from opsmesh_client.cdn import (
    AggregatorHealth,
    Backoff,
    CdnProvider,
    CdnRouter,
    ImageTransform,
    PurgeError,
    PurgeRequest,
    PurgeScope,
    RoutingError,
    RoutingPolicy,
    StaticHealth,
    cdn_url,
    configure,
    purge_everywhere,
)
from opsmesh_client.cdn.urls import router_from_config

from .cdn_testing import FakeProvider

NAMES = ("cloudflare", "fastly", "cloudfront")


def _router(health: StaticHealth | AggregatorHealth | None = None) -> CdnRouter:
    policy = RoutingPolicy.from_config(
        {
            "default": ["cloudflare", "fastly", "cloudfront"],
            "regions": {"eu": ["fastly", "cloudflare"], "us": ["cloudfront"]},
            "countries": {"de": "eu", "FR": "eu", "US": "us"},
        },
        NAMES,
    )
    providers: list[CdnProvider] = [FakeProvider(n) for n in NAMES]
    return CdnRouter(providers, policy, health)


def test_the_region_orders_first_then_the_default_order_fills_in():
    policy = _router().policy
    assert policy.order("DE") == ("fastly", "cloudflare", "cloudfront")
    assert policy.order("eu") == ("fastly", "cloudflare", "cloudfront")
    assert policy.order("US") == ("cloudfront", "cloudflare", "fastly")
    assert policy.order("JP") == NAMES
    assert policy.order(None) == NAMES


def test_an_unhealthy_provider_is_skipped_and_taken_back_when_it_recovers():
    health = StaticHealth()
    router = _router(health)
    assert router.choose("DE").name == "fastly", "unknown health counts as healthy"
    health.set("fastly", False)
    assert router.choose("DE").name == "cloudflare"
    assert router.url("img/a.png", region="DE") == "https://cloudflare.example/img/a.png"
    health.set("cloudflare", False)
    assert router.choose("DE").name == "cloudfront"
    health.set("cloudfront", False)
    assert router.choose("DE").name == "fastly", "all down: the first preferred"
    health.set("fastly", True)
    assert router.choose("DE").name == "fastly"


def test_cdn_url_uses_the_configured_router_and_renders_the_transform():
    configure(_router())
    try:
        assert cdn_url("img/logo.png", region="FR", width=200) == (
            "https://fastly.example/img/logo.png?w=200"
        )
        assert cdn_url("img/logo.png", transform=ImageTransform(width=50)) == (
            "https://cloudflare.example/img/logo.png?w=50"
        )
    finally:
        configure(None)
    with pytest.raises(RuntimeError, match="no CDN router"):
        cdn_url("img/logo.png")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"default": ["akamai"]}, "default: unknown providers akamai"),
        ({"regions": {"eu": ["fastly", "nope"]}}, "regions.eu|eu: unknown providers nope"),
        ({"countries": {"DE": "mars"}}, "DE -> unknown region mars"),
        ({"default": []}, "at least one provider"),
        ({"defaults": []}, "unknown keys defaults"),
    ],
)
def test_routing_configuration_errors(config, message):
    with pytest.raises(RoutingError, match=message):
        RoutingPolicy.from_config(config, NAMES)


def test_a_router_from_the_cdn_file_content_without_health_routes_by_region():
    document = {
        "providers": {
            n: {
                "type": "generic",
                "base_url": f"https://{n}.example",
                "purge_url": f"https://{n}.example/purge",
            }
            for n in ("a", "b")
        },
        "routing": {"regions": {"eu": ["b"]}, "countries": {"DE": "eu"}},
    }
    router = router_from_config(document, env={})
    assert router.url("x.css", region="DE") == "https://b.example/x.css"
    assert router.url("x.css") == "https://a.example/x.css"


# -- the health poller ---------------------------------------------------------------------


class FakeAggregator:
    """Answers like health-aggregator's service detail, or fails like an absent one."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] | Exception = (404, b'{"error": "unknown_service"}')
        self.urls: list[str] = []

    def set_checks(self, **statuses: str) -> None:
        checks = [
            {"instance": "probe", "check": name, "status": status, "critical": True}
            for name, status in statuses.items()
        ]
        self.answer = (200, json.dumps({"service": "cdn", "checks": checks}).encode())

    def __call__(self, url: str, timeout_s: float) -> tuple[int, bytes]:
        self.urls.append(url)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_poller_reads_checks_keeps_state_when_unreachable_and_logs_once(caplog):
    fake, clock = FakeAggregator(), Clock()
    health = AggregatorHealth("http://ha:8083/", fetch=fake, clock=clock)
    router = _router()
    router.health = health

    assert health.poll_once()
    assert health.healthy("fastly") is None, "404: no probe has reported yet"
    assert fake.urls == ["http://ha:8083/api/v1/services/cdn"]

    fake.set_checks(fastly="fail", cloudflare="warn", cloudfront="pass")
    clock.now = 101.0
    assert health.poll_once()
    assert router.choose("DE").name == "cloudflare"
    assert health.age_s() == 0.0

    fake.answer = ConnectionRefusedError("refused")
    caplog.set_level(logging.WARNING, "opsmesh_client.cdn")
    clock.now = 105.0
    assert not health.poll_once()
    assert not health.poll_once()
    assert router.choose("DE").name == "cloudflare", "the last known state stands"
    assert health.age_s() == 4.0
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1
    assert not health.reachable

    fake.set_checks(fastly="pass")
    assert health.poll_once()
    assert router.choose("DE").name == "fastly"
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_the_poller_treats_a_garbled_answer_as_unreachable():
    fake = FakeAggregator()
    health = AggregatorHealth("http://ha:8083", fetch=fake)
    fake.set_checks(fastly="fail")
    assert health.poll_once()
    for answer in [(200, b"not json"), (500, b"{}"), (200, b"[1, 2]")]:
        fake.answer = answer
        assert not health.poll_once()
        assert health.healthy("fastly") is False


def test_a_provider_is_healthy_while_any_instance_of_its_check_serves():
    fake = FakeAggregator()
    checks = [
        {"instance": "probe-a", "check": "fastly", "status": "fail"},
        {"instance": "probe-b", "check": "fastly", "status": "pass"},
        {"instance": "probe-a", "check": "cloudflare", "status": "fail"},
    ]
    fake.answer = (200, json.dumps({"checks": checks}).encode())
    health = AggregatorHealth("http://ha:8083", fetch=fake)
    assert health.poll_once()
    assert health.states == {"fastly": True, "cloudflare": False}


# -- purge_everywhere ----------------------------------------------------------------------


def _error(name: str, transient: bool) -> PurgeError:
    return PurgeError(name, "boom", transient=transient)


async def test_purge_everywhere_retries_transient_failures_within_the_bound():
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    flaky = FakeProvider("flaky", failures=[_error("flaky", True), _error("flaky", True)])
    broken = FakeProvider("broken", failures=[_error("broken", False)])
    down = FakeProvider("down", failures=[_error("down", True) for _ in range(10)])
    fine = FakeProvider("fine")
    request = PurgeRequest(PurgeScope.TAG, ("t",))

    outcomes = await purge_everywhere(
        [flaky, broken, down, fine],
        request,
        backoff=Backoff(attempts=4, base_s=1.0, max_s=3.0),
        sleep=sleep,
        rng=random.Random(7),
    )

    assert [(o.provider, o.ok, o.attempts) for o in outcomes] == [
        ("flaky", True, 3),
        ("broken", False, 1),
        ("down", False, 4),
        ("fine", True, 1),
    ]
    assert outcomes[2].error is not None
    assert outcomes[2].error.transient
    assert flaky.purged == [request]
    assert fine.purged == [request]
    assert down.calls == 4
    assert len(slept) == 2 + 3
    assert all(0 <= s <= 3.0 for s in slept)


async def test_an_adapter_raising_outside_its_contract_does_not_hide_the_others():
    class Buggy(FakeProvider):
        async def purge(self, request: PurgeRequest) -> None:
            raise KeyError("bug")

    fine = FakeProvider("fine")
    outcomes = await purge_everywhere([Buggy("buggy"), fine], PurgeRequest(PurgeScope.ALL))
    assert [(o.provider, o.ok) for o in outcomes] == [("buggy", False), ("fine", True)]
    assert outcomes[0].error is not None
    assert not outcomes[0].error.transient


def test_backoff_is_exponential_with_full_jitter_and_capped():
    backoff = Backoff(attempts=5, base_s=0.5, max_s=2.0)
    assert [backoff.delay(n, 1.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.0]
    assert backoff.delay(3, 0.25) == 0.5
